"""Ugly input: clear errors (or correct results), never a traceback or a hang."""

from __future__ import annotations

import os
import random

import pytest

from masqctl.engine import AgentOptions, ConfigSource, effective_config, render
from masqctl.errors import ConfigError


def load(data: bytes, options: AgentOptions = AgentOptions()):
    return effective_config([ConfigSource("ip-masq-agent", data)], options)


def bomb(levels: int = 9) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\nmasqLinkLocal: true\n").encode()


def test_yaml_bomb_is_refused_as_excessive_aliasing():
    with pytest.raises(ConfigError) as info:
        load(bomb())
    assert info.value.code == "E102" and "aliasing" in info.value.message


def test_a_few_aliases_are_fine():
    config = load(b"x: &l [10.0.0.0/8]\nnonMasqueradeCIDRs: *l\n")
    assert config.cidrs() == ["10.0.0.0/8"]


def test_recursive_anchor_is_refused():
    with pytest.raises(ConfigError) as info:
        load(b"x: &a [*a]\n")
    assert info.value.code == "E102"


@pytest.mark.parametrize("data", [b"[" * 100_000, b"- " * 50_000, b'{"a":' * 50_000, b"{" * 3000 + b"}" * 3000])
def test_deep_nesting_is_refused(data):
    with pytest.raises(ConfigError) as info:
        load(data)
    assert info.value.code in ("E102", "E103")


def test_ten_megabytes_of_cidrs_is_too_many_not_a_hang():
    data = b"nonMasqueradeCIDRs:\n" + b"  - 10.0.0.0/8\n" * 700_000
    assert len(data) > 10 * 1024 * 1024
    with pytest.raises(ConfigError) as info:
        load(data)
    assert info.value.code == "E106" and "700000 CIDRs" in info.value.message


def test_ten_megabytes_of_comment_around_a_valid_setting():
    data = b"# " + b"x" * (10 * 1024 * 1024) + b"\nmasqLinkLocal: true\n"
    config = load(data)
    assert config.masq_link_local.value is True and config.masq_link_local.origins[0].line == 2


def test_binary_garbage_is_a_parse_error():
    rng = random.Random(7)
    for _ in range(20):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
        try:
            config = load(data)
        except ConfigError as exc:
            assert exc.code in ("E102", "E103") and exc.file == "ip-masq-agent"
        else:  # some random bytes are valid YAML scalars; then the result must still be usable
            render(config, AgentOptions())


def test_urandom_blob_names_the_file():
    with pytest.raises(ConfigError) as info:
        load(b"\x00" + os.urandom(1000))
    assert info.value.one_line().startswith("E102 ip-masq-agent")


def test_utf16_with_bom_is_read_like_go_yaml():
    config = load(b"\xff\xfe" + "masqLinkLocal: true\n".encode("utf-16-le"))
    assert config.masq_link_local.value is True


@pytest.mark.parametrize("doc,code", [
    (b"masqLinkLocal: [true]\n", "E103"),
    (b"masqLinkLocal: 1\n", "E103"),
    (b'{"nonMasqueradeCIDRs": {"a": "10.0.0.0/8"}}', "E103"),
    (b"nonMasqueradeCIDRs: [[10.0.0.0/8]]\n", "E103"),
    (b"nonMasqueradeCIDRs: [.inf]\n", "E102"),
    (b"nonMasqueradeCIDRs: [10.0.0.0/33]\n", "E104"),
    (b"nonMasqueradeCIDRs: ['10.0.0.0/8 ']\n", "E104"),
    (b"nonMasqueradeCIDRs: ['fe80::1%eth0/64']\n", "E104"),
    (b"key: \"unterminated\n", "E102"),
    (b"\t- tab indented\n", "E102"),
    (b"? [a, b]\n: c\n", "E102"),
])
def test_wrong_shapes_and_values(doc, code):
    with pytest.raises(ConfigError) as info:
        load(doc, AgentOptions(enable_ipv6=True))
    assert info.value.code == code, info.value.one_line()


def test_everything_masqueraded_and_nothing_masqueraded_render():
    nothing = render(load(b"nonMasqueradeCIDRs: [0.0.0.0/0]\nmasqLinkLocal: true\n"), AgentOptions()).ipv4
    assert [r.kind for r in nothing.rules] == ["return", "masquerade"]
    v6 = render(load(b"nonMasqueradeCIDRs: ['::/0']\n", AgentOptions(enable_ipv6=True)),
                AgentOptions(enable_ipv6=True))
    assert any(r.text.endswith("-d ::/0 -j RETURN") for r in v6.ipv6.rules)
    assert not any("::/0" in r.text for r in v6.ipv4.rules)


@pytest.mark.parametrize("data,line", [(b"[", 1), (b"a: [\n", 1), (b"a: 1\nb: {", 2), (b"a: 1\r\nb: [\r\n", 2),
                                       (b"a: 1\n\n\nb: '", 4)])
def test_an_error_at_the_end_names_the_last_line_not_one_past_it(data, line):
    with pytest.raises(ConfigError) as info:
        load(data)
    assert info.value.code == "E102" and info.value.line == line, info.value.one_line()
