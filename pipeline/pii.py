"""Mask personal data in document texts: e-mail addresses and public IPv4 addresses.

Like datatrove's PIIFormatter, which FineWeb used, but with one fixed placeholder per kind, in
ranges reserved for documentation so they point at no one: example.com (RFC 2606) and
192.0.2.0/24 (TEST-NET-1, RFC 5737); datatrove's IP placeholders lie in public ranges.
Private, loopback and other non-public addresses (192.168.1.1, 10.0.0.2, 127.0.0.1) are not
personal and are common in technical text, so they stay, as with datatrove's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

# Local part, "@", dot-separated domain labels, a top-level domain of letters.
_EMAIL = (
    r"(?i)\b[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}\b"
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# Public unicast addresses: first octets 1-223 but 10 (private) and 127 (loopback); for 100,
# 169, 172 and 192 only the second octets outside their non-public blocks. Multicast and
# reserved space (224 and up) are not personal.
_PUBLIC_FIRST = (
    r"(?:[1-9]|1[1-9]|[2-9]\d|10[1-9]|11\d|12[0-689]|1[3-5]\d|16[0-8]|17[013-9]|18\d|19[013-9]"
    r"|2[01]\d|22[0-3])"
)
_SECOND_NOT_PRIVATE = {
    "100": r"(?:[1-5]?\d|6[0-3]|12[89]|1[3-9]\d|2[0-4]\d|25[0-5])",  # 100.64/10: carrier-grade NAT
    "169": r"(?:[1-9]?\d|1\d\d|2[0-4]\d|25[0-35])",  # 169.254/16: link-local
    "172": r"(?:\d|1[0-5]|3[2-9]|[4-9]\d|1\d\d|2[0-4]\d|25[0-5])",  # 172.16/12: private
    # 192.168/16 is private; 192.0/16 holds reserved blocks and our own placeholder.
    "192": r"(?:[1-9]\d?|1[0-57-9]\d|16[0-79]|2[0-4]\d|25[0-5])",
}
_PUBLIC_IPV4 = (
    r"(?:"
    + _PUBLIC_FIRST
    + r"\."
    + _OCTET
    + "".join(f"|{first}\\.{second}" for first, second in _SECOND_NOT_PRIVATE.items())
    + r")\."
    + _OCTET
    + r"\."
    + _OCTET
)
# An address stands alone: preceded by neither a word character nor a dot, followed by neither
# a word character nor a dot and a digit (so 1.2.3.4.5 and v1.2.3.4 are not addresses). RE2 has
# no look-around, so the neighbours are captured and written back; texts get a leading space so
# that every address has a character before it (an "^" alternative would also match where
# count_substring_regex resumes after a match, and make it over-count).
_IPV4_IN_CONTEXT = r"([^\w.])(" + _PUBLIC_IPV4 + r")(\.?(?:[^\w.]|$))"


@dataclass(frozen=True)
class PiiConfig:
    """Which personal data to mask in texts, and what to put in its place."""

    enabled: bool = field(default=False, metadata={"help": "mask e-mail and IP addresses in texts"})
    emails: bool = field(default=True, metadata={"help": "mask e-mail addresses"})
    ip_addresses: bool = field(default=True, metadata={"help": "mask public IPv4 addresses"})
    email_replacement: str = field(
        default="email@example.com", metadata={"help": "what replaces an e-mail address"}
    )
    ip_replacement: str = field(
        default="192.0.2.1", metadata={"help": "what replaces an IP address"}
    )


def mask_pii(docs: pa.Table, config: PiiConfig) -> tuple[pa.Table, dict[str, int]]:
    """Replace e-mail and public IPv4 addresses in `text`; also return how many of each."""
    counts = {"emails": 0, "ip_addresses": 0}
    if not config.enabled:
        return docs, counts
    texts = docs.column("text")
    if config.emails:
        counts["emails"] = _count(texts, _EMAIL)
        texts = pc.replace_substring_regex(texts, _EMAIL, _literal(config.email_replacement))
    if config.ip_addresses:
        replacement = r"\1" + _literal(config.ip_replacement) + r"\3"
        texts = pc.replace_substring_regex(texts, "^", " ", max_replacements=1)
        # Two addresses one character apart share that character as context, so one pass masks
        # only every other; the second pass masks the rest.
        for _ in range(2):
            counts["ip_addresses"] += _count(texts, _IPV4_IN_CONTEXT)
            texts = pc.replace_substring_regex(texts, _IPV4_IN_CONTEXT, replacement)
        texts = pc.utf8_slice_codeunits(texts, 1)
    index = docs.schema.get_field_index("text")
    return docs.set_column(index, docs.schema.field("text"), texts), counts


def _count(texts: pa.ChunkedArray, pattern: str) -> int:
    """Number of non-overlapping matches of `pattern` over all texts."""
    return int(pc.sum(pc.count_substring_regex(texts, pattern)).as_py() or 0)


def _literal(replacement: str) -> str:
    """`replacement` escaped for an RE2 rewrite string, where a backslash starts a group number."""
    return replacement.replace("\\", "\\\\")
