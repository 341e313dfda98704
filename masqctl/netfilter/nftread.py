"""Read an nftables ruleset in either form: ``nft -j list ruleset`` JSON or ``nft list ruleset`` text
(decided by the first character)."""

from __future__ import annotations

from masqctl.netfilter.nft import NftError, Ruleset, parse_json
from masqctl.netfilter.nfttext import parse_text


def parse_ruleset(text: str, source: str) -> Ruleset:
    stripped = text.lstrip()
    if not stripped:
        raise NftError("the ruleset is empty (no tables)", None, "empty")
    if stripped[0] in "{[":
        return parse_json(text, source)
    return parse_text(text, source)


__all__ = ["parse_ruleset", "NftError", "Ruleset"]
