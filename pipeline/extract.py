"""HTML bytes to a page title and its main text, with resiliparse.

The charset is taken, in order, from a byte-order mark, the NUL bytes of UTF-16 without one, the
HTTP header, the page's own `<meta charset>`/http-equiv, and finally uchardet's guess, so a page
declared only in one of these places still decodes to the right script. Bytes invalid in that
charset are replaced and counted.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html import unescape

import numpy as np
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
# The title lives in <head>; looking no further than this bounds the search on huge pages.
_TITLE_WINDOW = 1 << 16

# A byte-order mark settles the encoding before anything else (as in the WHATWG decode algorithm).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SURROGATES = re.compile("[\udc80-\udcff]")
# UTF-16 without a BOM shows in its first code units: markup is ASCII, so most units have a NUL
# high byte and a printable low byte. Binary data with NULs rarely has both on one side.
_UTF16_SAMPLE = 1024
_UTF16_ASCII_UNITS = 0.5
_UTF16_PRINTABLE = 0.95
_PRINTABLE_ASCII = np.zeros(256, bool)
_PRINTABLE_ASCII[[9, 10, 13, *range(32, 127)]] = True


@dataclass(frozen=True)
class ExtractConfig:
    """resiliparse `extract_plain_text` options.

    The defaults are those of DCLM (Li et al. 2024, "DataComp-LM", which extracts with resiliparse
    and main_content=True) and of datatrove's resiliparse extractor: main content only, no image alt
    texts, link targets or form fields, which would otherwise leave captions and menus in the prose.
    """

    main_content: bool = field(
        default=True,
        metadata={
            "help": "keep only the main content: drop navigation, headers, footers, sidebars"
        },
    )
    preserve_formatting: bool = field(
        default=True, metadata={"help": "keep paragraph breaks and block structure as newlines"}
    )
    list_bullets: bool = field(
        default=True, metadata={"help": "prefix list items with a bullet or their number"}
    )
    alt_texts: bool = field(default=False, metadata={"help": "keep the alt text of images"})
    links: bool = field(default=False, metadata={"help": "include link target URLs in the text"})
    form_fields: bool = field(
        default=False, metadata={"help": "keep the values and labels of form fields"}
    )
    noscript: bool = field(default=False, metadata={"help": "keep the contents of <noscript>"})
    comments: bool = field(
        default=True, metadata={"help": "keep comment sections (e.g. reader comments) as content"}
    )


@dataclass(frozen=True)
class Extracted:
    """What `html_to_text` found: `text` is empty when the page has no extractable content."""

    title: str | None
    text: str
    charset: str
    invalid_bytes: int


def html_to_text(body: bytes, http_charset: str | None, config: ExtractConfig) -> Extracted:
    """Decode an HTML page and extract its title and main text."""
    charset = page_charset(body, http_charset)
    html, invalid = decode_counting(body, charset)
    # A string, not an HTMLTree: resiliparse's tree may not be freed on another thread than the one
    # that built it, which Python's cyclic collector can do inside a multi-threaded Dask worker.
    text = extract_plain_text(
        html,
        preserve_formatting=config.preserve_formatting,
        main_content=config.main_content,
        list_bullets=config.list_bullets,
        alt_texts=config.alt_texts,
        links=config.links,
        form_fields=config.form_fields,
        noscript=config.noscript,
        comments=config.comments,
    )
    return Extracted(
        title=page_title(html), text=text.strip(), charset=charset, invalid_bytes=invalid
    )


def page_title(html: str) -> str | None:
    """The text of the page's first <title> element, unescaped and on one line."""
    match = _TITLE.search(html, 0, _TITLE_WINDOW)
    if not match:
        return None
    return " ".join(unescape(_TAG.sub(" ", match.group(1))).split()) or None


def page_charset(body: bytes, http_charset: str | None) -> str:
    """The codec to decode a page with: BOM, then UTF-16's NUL bytes, then HTTP header, then meta
    tag, then a guess."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    utf16 = utf16_without_bom(body)
    if utf16:
        return utf16
    declared = map_encoding_to_html5(http_charset, fallback_utf8=False) if http_charset else None
    # from_html_meta reads <meta charset> or http-equiv in the first 1024 bytes and falls back to
    # uchardet; both answers are mapped to WHATWG names (iso-8859-1 becomes cp1252, as browsers do).
    return declared or detect_encoding(body, from_html_meta=True) or "utf-8"


def utf16_codec(data: bytes) -> str | None:
    """The codec of UTF-16 text: "utf-16" if `data` starts with a UTF-16 byte-order mark, else
    `utf16_without_bom`'s answer (None if it does not look like UTF-16)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return utf16_without_bom(data)


def utf16_without_bom(data: bytes) -> str | None:
    """The codec ("utf-16-le" or "utf-16-be") of UTF-16 text without a byte-order mark, if `data`
    starts like it (most of its first code units ASCII), else None."""
    sample = data[: min(len(data), _UTF16_SAMPLE) & ~1]
    if b"\x00" not in sample:
        return None
    units = np.frombuffer(sample, np.uint8).reshape(-1, 2)
    for name, low, high in (("utf-16-le", 0, 1), ("utf-16-be", 1, 0)):
        ascii_units = units[units[:, high] == 0, low]
        if (
            len(ascii_units) >= _UTF16_ASCII_UNITS * len(units)
            and _PRINTABLE_ASCII[ascii_units].mean() >= _UTF16_PRINTABLE
        ):
            return name
    return None


def decode_counting(data: bytes, charset: str) -> tuple[str, int]:
    """Decode `data`, replacing each byte invalid in `charset` with U+FFFD; return (text, count)."""
    try:
        return data.decode(charset), 0
    except UnicodeDecodeError:
        pass
    except LookupError:
        charset = "utf-8"
    try:
        # surrogateescape turns each undecodable byte into one lone surrogate: easy to count.
        escaped = data.decode(charset, errors="surrogateescape")
    except UnicodeDecodeError:
        # A few multi-byte codecs report invalid sequences that include ASCII bytes, which
        # surrogateescape refuses; count the replacement characters instead.
        text = data.decode(charset, errors="replace")
        return text, text.count("\ufffd")
    return _SURROGATES.subn("\ufffd", escaped)
