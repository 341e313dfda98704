"""User-given text inputs (``--iptables``, ``--ipset``, ``--ip-addr``, stdin, ``--from-file``,
``--from-backup``): devices refused, size capped with bounded memory, binary and non-UTF-8
refused, each with its command's code and the input named."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

import pytest

from masqctl.errors import InputError, UsageError
from masqctl.textinput import MAX_BYTES, Codes, decode, read_bytes, read_text

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "dumps")
AKS = os.path.join(FIXTURES, "aks-azurecni-ipmasqagent-v2-grep-fragment.txt")
ARGS = ["explain", "10.224.0.30", "10.240.0.5", "--local-address", "10.224.0.4/16@eth0", "--node-ip", "10.224.0.4"]
CMD = [sys.executable, "-m", "masqctl.cli.main"]


def run(*args: str, stdin=None, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *args], capture_output=True, stdin=stdin, input=input, timeout=timeout)


# A fresh interpreter starts masqctl and reports its peak RSS: a child forked straight from this test
# process would count the test process's own pages (large late in a full run) in its ru_maxrss.
_MEASURE = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:])\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "sys.stderr.write(f'\\nMAXRSS {usage.ru_maxrss}\\n')\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run_measured(args: list[str], stdin) -> tuple[int, bytes, float, int]:
    """Exit status, stderr, seconds and peak RSS (KiB) of one masqctl run."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _MEASURE, *CMD, *args], stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, err = proc.communicate()
    head, _, tail = err.rpartition(b"\nMAXRSS ")
    return proc.returncode, head, time.monotonic() - start, int(tail.split()[0])


def measured_from_endless(writer_cmd: list[str]) -> tuple[int, bytes, float, int]:
    """``run_measured`` of ``explain --iptables -`` with stdin fed by ``writer_cmd``, which never ends."""
    writer = subprocess.Popen(writer_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        return run_measured([*ARGS, "--iptables", "-"], writer.stdout)
    finally:
        writer.stdout.close()
        writer.kill()
        writer.wait()


def one_error(r, code: str, *words: str) -> str:
    err = r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr
    assert r.returncode == 2, err
    assert code in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize("flag", ["--iptables", "--ipset", "--ip-addr"])
def test_a_device_is_refused_before_it_is_read(flag):
    args = ["--iptables", AKS] if flag != "--iptables" else []
    start = time.monotonic()
    r = run(*ARGS, *args, flag, "/dev/zero", timeout=20)
    one_error(r, "E310", "/dev/zero", "device")
    assert time.monotonic() - start < 15


def test_a_device_on_stdin_is_refused():
    with open("/dev/zero", "rb") as zero:
        r = run(*ARGS, "--iptables", "-", stdin=zero, timeout=20)
    one_error(r, "E310", "stdin", "device")


def test_a_folder_is_refused(tmp_path):
    one_error(run(*ARGS, "--iptables", str(tmp_path)), "E310", str(tmp_path), "folder")


# --------------------------------------------------------------------------- endless and huge inputs


def test_endless_text_on_stdin_stops_at_the_cap_with_bounded_memory():
    rc, err, seconds, rss_kib = measured_from_endless([sys.executable, "-c",
        "import sys\nline = b'# ' + b'x' * 1000 + b'\\n'\nblock = line * 1024\n"
        "try:\n    while True: sys.stdout.buffer.write(block)\nexcept BrokenPipeError:\n    pass\n"])
    text = err.decode()
    assert rc == 2 and "E319" in text and "stdin" in text and "256 MiB" in text and "Traceback" not in text, text
    assert seconds < 30, seconds
    assert rss_kib < (MAX_BYTES >> 10) + 200 * 1024, rss_kib     # the cap plus the interpreter, not growing


def test_endless_nul_bytes_on_stdin_stop_at_the_first_chunk():
    rc, err, seconds, rss_kib = measured_from_endless(["cat", "/dev/zero"])
    assert rc == 2 and b"E311" in err and b"binary" in err, err
    assert seconds < 15 and rss_kib < 200 * 1024, (seconds, rss_kib)


def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as fh:              # sparse: reading it would find NUL bytes (E311), not E319
        fh.truncate(MAX_BYTES + 1)
    start = time.monotonic()
    one_error(run(*ARGS, "--iptables", str(huge)), "E319", str(huge), "256 MiB")
    assert time.monotonic() - start < 15


# --------------------------------------------------------------------------- FIFOs and pipes


def _fifo_writer(path: str, data: bytes | None) -> threading.Thread:
    def write():
        try:
            with open(path, "wb") as fh:
                if data is not None:
                    fh.write(data)
                    return
                block = b"# comment\n" * 100_000
                while True:
                    fh.write(block)
        except (BrokenPipeError, OSError):
            pass
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_a_named_fifo_is_read_like_a_pipe(tmp_path):
    fifo = str(tmp_path / "dump.fifo")
    os.mkfifo(fifo)
    with open(AKS, "rb") as fh:
        t = _fifo_writer(fifo, fh.read())
    r = run(*ARGS, "--iptables", fifo, "-o", "json")
    t.join(10)
    assert r.returncode == 0, r.stderr
    assert b'"masqueraded": true' in r.stdout


def test_an_endless_fifo_stops_at_the_cap(tmp_path):
    fifo = str(tmp_path / "endless.fifo")
    os.mkfifo(fifo)
    t = _fifo_writer(fifo, None)
    one_error(run(*ARGS, "--iptables", fifo, timeout=60), "E319", fifo)
    t.join(10)


def test_process_substitution_style_pipe_path():
    r = subprocess.run(["bash", "-c", 'exec "$@" --iptables <(cat "$AKS") -o json', "bash", *CMD, *ARGS],
                       capture_output=True, env={**os.environ, "AKS": AKS}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b'"masqueraded": true' in r.stdout


# --------------------------------------------------------------------------- binary and encodings


def test_nul_bytes_after_the_first_64k_are_binary(tmp_path):
    path = tmp_path / "dump.txt"
    with open(AKS, "rb") as fh:
        path.write_bytes(fh.read() + b"#" * 70_000 + b"\x00\n")
    one_error(run(*ARGS, "--iptables", str(path)), "E311", str(path), "binary")


def test_not_utf8_is_refused_with_the_offset(tmp_path):
    path = tmp_path / "dump.txt"
    with open(AKS, "rb") as fh:
        data = fh.read()
    path.write_bytes(data + b"# caf\xe9\n")
    one_error(run(*ARGS, "--iptables", str(path)), "E311", str(path), "UTF-8", f"offset {len(data) + 5}")


def test_stdin_not_utf8_is_an_input_error_naming_stdin():
    with open(AKS, "rb") as fh:
        data = fh.read()
    r = subprocess.run([*CMD, *ARGS, "--iptables", "-"], input=data + b"# caf\xe9\n", capture_output=True,
                       timeout=60)
    one_error(r, "E311", "stdin", "UTF-8")


# --------------------------------------------------------------------------- apply's inputs, same reader


@pytest.mark.parametrize("flag, code", [("--from-file", "E253"), ("--from-backup", "E255")])
def test_apply_inputs_refuse_devices_and_binary(tmp_path, flag, code):
    bundle = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "examples", "aks-kubenet")
    one_error(run("apply", "--bundle", bundle, flag, "/dev/zero", timeout=20), code, "/dev/zero", "device")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: 1\n\x00")
    one_error(run("apply", "--bundle", bundle, flag, str(binary)), code, str(binary), "binary")


# --------------------------------------------------------------------------- the reader itself


def test_read_text_from_a_stream_in_chunks():
    data = b"x" * (3 << 20) + b"\n"
    assert read_text("-", stdin=io.BytesIO(data)) == data.decode()
    with pytest.raises(InputError) as exc:
        read_text("-", stdin=io.BytesIO(data), max_bytes=1 << 20, what="iptables-save")
    assert exc.value.code == "E319" and exc.value.input == "stdin" and "1 MiB" in exc.value.message
    with pytest.raises(InputError) as exc:
        read_text("-", stdin=io.BytesIO(b"ok\n" * 400_000 + b"\x00"))
    assert exc.value.code == "E311"


def test_codes_and_error_class_are_the_callers():
    codes = Codes(open="E253", binary="E253", size="E253", error=UsageError)
    with pytest.raises(UsageError) as exc:
        read_bytes("/dev/zero", label="--from-file /dev/zero", codes=codes, what="")
    assert exc.value.code == "E253" and exc.value.message.startswith("is a device")
    with pytest.raises(UsageError):
        read_bytes("-", codes=codes, stdin_ok=False)       # "-" is a file name here, and absent
    assert decode("f", "\ufeffa".encode()) == "a"
    with pytest.raises(InputError) as exc:
        decode("f", b"\xff")
    assert exc.value.code == "E311" and "offset 0" in exc.value.message
