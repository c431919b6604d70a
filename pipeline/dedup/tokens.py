"""Words of many texts at once, found in their UTF-8 bytes with numpy: the units of dedup shingles.

A word is a lowercased run of letters, digits and marks; everything else separates words; each
character of a script written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) is a
word of its own, so shingles there are character n-grams. Character classes come from code point
ranges rather than the Unicode database: ASCII exactly, and beyond it the blocks of punctuation,
symbols, emoji and private use as separators, everything else as letters. This is coarser than
`corpusmill.pipeline.words.split_words` (which keeps "3.14" whole, and knows every character's
class) and several times faster than any regular expression over the text, which matters here
because dedup reads every kept byte once more. Copies of a text always split the same way, and so
do texts the exact hash counts as copies (the same once lowercased and whitespace collapsed): every
character Unicode counts as whitespace separates words, which lets the graph hold one node for all
copies of a text (copies.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEPARATOR, _LETTER, _SPACELESS = 0, 1, 2

# (first code point, class) of consecutive ranges above ASCII; a range runs to the next start.
_RANGES = (
    (0x80, _SEPARATOR),  # C1 controls, Latin-1 punctuation and symbols, no-break space
    (0xC0, _LETTER),
    (0xD7, _SEPARATOR),  # multiplication sign
    (0xD8, _LETTER),
    (0xF7, _SEPARATOR),  # division sign
    (0xF8, _LETTER),
    (0x0E00, _SPACELESS),  # Thai, Lao
    (0x0F00, _LETTER),
    (0x1000, _SPACELESS),  # Myanmar
    (0x10A0, _LETTER),
    (0x1680, _SEPARATOR),  # Ogham space mark: whitespace to the exact hash too
    (0x1681, _LETTER),
    (0x1780, _SPACELESS),  # Khmer
    (0x1800, _LETTER),
    (0x2000, _SEPARATOR),  # general punctuation, currency, arrows, maths, boxes, dingbats...
    (0x2C00, _LETTER),
    (0x2E00, _SEPARATOR),  # supplemental punctuation
    (0x2E80, _LETTER),
    (0x3000, _SEPARATOR),  # CJK punctuation
    (0x3005, _SPACELESS),  # iteration marks
    (0x3008, _SEPARATOR),  # CJK brackets
    (0x3040, _SPACELESS),  # Hiragana, Katakana
    (0x3100, _LETTER),
    (0x31F0, _SPACELESS),  # Katakana extensions
    (0x3200, _LETTER),
    (0x3400, _SPACELESS),  # CJK unified ideographs and extension A
    (0xA000, _LETTER),
    (0xE000, _SEPARATOR),  # private use
    (0xF900, _SPACELESS),  # CJK compatibility ideographs
    (0xFB00, _LETTER),
    (0xFE10, _SEPARATOR),  # vertical forms, CJK compatibility and small forms
    (0xFE70, _LETTER),
    (0xFF00, _SEPARATOR),  # fullwidth punctuation
    (0xFF10, _LETTER),  # fullwidth digits
    (0xFF1A, _SEPARATOR),
    (0xFF21, _LETTER),  # fullwidth Latin capitals
    (0xFF3B, _SEPARATOR),
    (0xFF41, _LETTER),  # fullwidth Latin small letters
    (0xFF5B, _SEPARATOR),
    (0xFF66, _SPACELESS),  # halfwidth Katakana
    (0xFFA0, _LETTER),
    (0xFFF0, _SEPARATOR),  # specials, replacement character
    (0x10000, _LETTER),
    (0x1F000, _SEPARATOR),  # game symbols, emoji, pictographs
    (0x1FB00, _LETTER),
    (0x20000, _SPACELESS),  # CJK extensions B and later
    (0x40000, _LETTER),
)
# Recorded in each signature file: a change to what the words are rewrites the files of older runs.
VERSION = 2
_RANGE_STARTS = np.array([start for start, _ in _RANGES])
_RANGE_CLASSES = np.array([cls for _, cls in _RANGES], np.uint8)


def split_words(texts: pa.Array | pa.ChunkedArray) -> pa.LargeListArray:
    """The lowercased words of each text, one list per text (empty for a null or wordless text).

    Memory: about 12 bytes per byte of text, briefly.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    if texts.type != pa.large_string():
        texts = texts.cast(pa.large_string())
    lowered = pc.utf8_lower(pc.fill_null(texts, "") if texts.null_count else texts)
    _, offsets_buffer, data_buffer = lowered.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[
        lowered.offset : lowered.offset + len(lowered) + 1
    ]
    data = np.frombuffer(data_buffer or b"", np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    starts, ends, inside = _word_spans(data, offsets)
    # Every byte that is not a separator belongs to exactly one word, in order, so those bytes
    # alone, cut at the words' cumulative lengths, are the words as one contiguous string array.
    word_offsets = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(ends - starts, out=word_offsets[1:])
    words = pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(word_offsets), pa.py_buffer(data[inside])
    )
    list_offsets = np.searchsorted(starts, offsets).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(list_offsets), words)


def _word_spans(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end byte positions of every word in the concatenated texts, in order, and which
    bytes are in a word."""
    # Lowercase ASCII letters and digits, by unsigned wrap-around (a lookup table is slower).
    letter = ((data - np.uint8(ord("a"))) < 26) | ((data - np.uint8(ord("0"))) < 10)
    spaceless = np.zeros(len(data), bool)
    if len(data) and data.max() >= 0x80:
        leads = np.flatnonzero(data >= 0xC0)
        code_points, lengths = _code_points(data, leads)
        classes = _RANGE_CLASSES[np.searchsorted(_RANGE_STARTS, code_points, side="right") - 1]
        # Every byte of a character has its class.
        for k in range(4):
            longer = lengths > k
            at = np.minimum(leads[longer] + k, len(data) - 1)
            letter[at] = classes[longer] == _LETTER
            spaceless[at] = classes[longer] == _SPACELESS
    if not spaceless.any():
        return (*_letter_runs(letter, offsets), letter)
    # Each character of a spaceless script is also a word; words never run across texts.
    edge = np.zeros(len(data) + 1, bool)
    edge[offsets] = True
    edge[1:-1] |= letter[1:] != letter[:-1]
    first = (data & 0xC0) != 0x80  # the first byte of each character
    starts = np.flatnonzero((letter & edge[:-1]) | (spaceless & first))
    last_byte = edge[1:] | np.append(first[1:], True)
    ends = np.flatnonzero((letter & edge[1:]) | (spaceless & last_byte)) + 1
    return starts, ends, letter | spaceless


def _letter_runs(letter: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the runs of letters, cut where one text ends and the next begins."""
    change = np.diff(letter.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    inner = offsets[(offsets > 0) & (offsets < len(letter))]
    joined = np.unique(inner[letter[inner] & letter[inner - 1]])
    if len(joined):
        starts = np.insert(starts, np.searchsorted(starts, joined), joined)
        ends = np.insert(ends, np.searchsorted(ends, joined), joined)
    return starts, ends


def _code_points(data: np.ndarray, leads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The code points and byte lengths of the multi-byte characters starting at `leads`."""
    last = len(data) - 1
    b0 = data[leads].astype(np.int32)
    b1, b2, b3 = (data[np.minimum(leads + k, last)].astype(np.int32) & 0x3F for k in (1, 2, 3))
    two = ((b0 & 0x1F) << 6) | b1
    three = ((b0 & 0x0F) << 12) | (b1 << 6) | b2
    four = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3
    four_bytes, three_bytes = b0 >= 0xF0, b0 >= 0xE0
    code_points = np.where(four_bytes, four, np.where(three_bytes, three, two))
    return code_points, np.where(four_bytes, 4, np.where(three_bytes, 3, 2))
