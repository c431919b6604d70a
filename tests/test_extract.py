"""HTML to title and main text: boilerplate removal, charsets, and which payloads count as HTML."""

from __future__ import annotations

from pathlib import Path

from test_readers import gzip_members, read, rows, warc_record

from corpusmill.pipeline.extract import ExtractConfig, html_to_text

HEADING = "How birds find their way"
FIRST = (
    "Many songbirds migrate at night and use the stars, the magnetic field of the Earth and the "
    "position of the setting sun to keep their heading."
)
SECOND = (
    "Young birds on their first journey rely mostly on an inherited direction, while older birds "
    "correct their course using landmarks."
)
ARTICLE = f"""<!DOCTYPE html><html><head><title>Bird Migration Facts</title>
<script>var tracker = "collect everything";</script><style>p {{ color: red }}</style></head>
<body><header><nav>
<a href="/">Home</a> | <a href="/about">About us</a> | <a href="/contact">Contact</a>
</nav></header>
<main><article><h1>{HEADING}</h1>
<p>{FIRST}</p>
<p>{SECOND}</p>
<img src="map.png" alt="A map of flyways">
</article></main>
<footer><p>Copyright 2024 Example Media. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>""".encode()


def test_main_text_keeps_the_article_and_drops_navigation_footer_and_scripts():
    page = html_to_text(ARTICLE, None, ExtractConfig())
    assert page.title == "Bird Migration Facts"
    assert page.text == f"{HEADING}\n\n{FIRST}\n\n{SECOND}"
    assert page.invalid_bytes == 0


def test_extract_options_reach_resiliparse():
    page = html_to_text(ARTICLE, None, ExtractConfig(main_content=False, alt_texts=True))
    assert page.text == (
        f"Home | About us | Contact\n\n{HEADING}\n\n{FIRST}\n\n{SECOND}\n\nA map of flyways\n\n"
        "Copyright 2024 Example Media. All rights reserved.\n\nPrivacy policy"
    )


RUSSIAN = "Министерство образования сообщило о новых правилах приёма в университеты страны."


def cyrillic_page(title: str, body: str) -> str:
    return f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>"


def test_windows_1251_declared_only_in_the_http_header_wins_over_a_guess():
    body = cyrillic_page("Новости", RUSSIAN).encode("cp1251")
    page = html_to_text(body, "windows-1251", ExtractConfig())
    assert (page.title, page.text, page.charset) == ("Новости", RUSSIAN, "cp1251")
    # The same bytes declared as KOI8-R decode as KOI8-R: the header is obeyed, not second-guessed.
    koi8 = html_to_text(body, "koi8-r", ExtractConfig())
    assert (koi8.text, koi8.charset) == (RUSSIAN.encode("cp1251").decode("koi8-r"), "koi8-r")


CAFE = "Le café était très agréable à côté de la forêt, près de la plage où nous avons passé l'été."


def test_iso_8859_1_declared_only_in_a_meta_tag():
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        f"<title>Été à la côte</title></head><body><p>{CAFE}</p></body></html>"
    )
    page = html_to_text(html.encode("latin-1"), None, ExtractConfig())
    assert page.title == "Été à la côte"
    assert page.text == CAFE
    assert page.charset == "cp1252"  # what browsers decode iso-8859-1 as (WHATWG)


def test_undeclared_utf8_is_detected_and_a_byte_order_mark_beats_the_header():
    html = cyrillic_page("Заголовок", RUSSIAN).encode()
    assert html_to_text(html, None, ExtractConfig()).text == RUSSIAN
    bom = html_to_text(b"\xef\xbb\xbf" + html, "iso-8859-1", ExtractConfig())
    assert (bom.text, bom.charset) == (RUSSIAN, "utf-8-sig")


def test_invalid_bytes_are_replaced_and_counted():
    html = (
        b"<html><body><p>caf\xe9 and cr\xe8me br\xfbl\xe9e are French desserts.</p></body></html>"
    )
    page = html_to_text(html, "utf-8", ExtractConfig())
    assert page.text == "caf\ufffd and cr\ufffdme br\ufffdl\ufffde are French desserts."
    assert page.invalid_bytes == 4


HARBOUR = "The harbour master keeps a log of every ship that enters, with its cargo and its crew."
XHTML = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Harbour notes</title></head>
<body><p>{HARBOUR}</p></body></html>""".encode()


def test_payload_types_decide_what_becomes_a_document(tmp_path: Path):
    records = [
        warc_record("http://x.example/xhtml", XHTML, content_type="text/xml"),
        warc_record("http://x.example/untyped", ARTICLE, content_type=None),
        warc_record("http://x.example/octets", ARTICLE, content_type="application/octet-stream"),
        warc_record(
            "http://x.example/plain", b"Zeile eins.\nZeile zwei.", content_type="text/plain"
        ),
        warc_record("http://x.example/style.css", b"body { margin: 0 }", content_type="text/css"),
        warc_record(
            "http://x.example/rss",
            b"<?xml version='1.0'?><rss><channel/></rss>",
            content_type="text/xml",
        ),
        warc_record("http://x.example/empty", b"<html><body><script>x()</script></body></html>"),
        warc_record(
            "http://x.example/doc",
            b"<p>A stored page.</p>",
            kind="resource",
            content_type="text/html",
        ),
    ]
    data, offsets = gzip_members(records)
    (tmp_path / "c.warc.gz").write_bytes(data)
    docs, rejected, _ = read(tmp_path / "c.warc.gz")
    assert rows(docs, "url", "title", "text") == [
        ("http://x.example/xhtml", "Harbour notes", HARBOUR),
        ("http://x.example/untyped", "Bird Migration Facts", f"{HEADING}\n\n{FIRST}\n\n{SECOND}"),
        ("http://x.example/octets", "Bird Migration Facts", f"{HEADING}\n\n{FIRST}\n\n{SECOND}"),
        ("http://x.example/plain", None, "Zeile eins.\nZeile zwei."),
        ("http://x.example/doc", None, "A stored page."),
    ]
    assert rows(rejected, "offset", "url", "step", "reason") == [
        (offsets[4], "http://x.example/style.css", "read", "content_type"),
        (offsets[5], "http://x.example/rss", "read", "content_type"),
        (offsets[6], "http://x.example/empty", "extract", "empty_text"),
    ]
