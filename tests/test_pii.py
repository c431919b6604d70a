"""PII masking: e-mail and public IPv4 addresses replaced and counted, everything else untouched."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.pipeline.pii import PiiConfig, mask_pii

ON = PiiConfig(enabled=True)


def mask(*texts: str, config: PiiConfig = ON) -> tuple[list[str], dict[str, int]]:
    ids = [str(i) for i in range(len(texts))]
    docs = pa.table({"id": ids, "text": pa.array(texts, pa.large_string())})
    masked, counts = mask_pii(docs, config)
    assert masked.column_names == ["id", "text"]
    assert masked.schema.field("text").type == pa.large_string()
    return masked.column("text").to_pylist(), counts


def test_email_addresses_are_replaced_and_counted():
    texts, counts = mask("Write to Jane.Doe@Example.org or support+eu@mail.shop.co.uk today.")
    assert texts == ["Write to email@example.com or email@example.com today."]
    assert counts == {"emails": 2, "ip_addresses": 0}


def test_public_ipv4_addresses_are_replaced_and_counted():
    texts, counts = mask("Resolver 8.8.8.8 answered; 93.184.216.34 did not.", "Peer: 151.101.1.69")
    assert texts == ["Resolver 192.0.2.1 answered; 192.0.2.1 did not.", "Peer: 192.0.2.1"]
    assert counts == {"emails": 0, "ip_addresses": 3}


def test_addresses_on_consecutive_lines_are_all_replaced():
    texts, counts = mask("nameserver 8.8.8.8\n1.1.1.1\n9.9.9.9")
    assert texts == ["nameserver 192.0.2.1\n192.0.2.1\n192.0.2.1"]
    assert counts["ip_addresses"] == 3


def test_private_loopback_and_link_local_addresses_stay():
    text = "Open 192.168.1.1, ssh to 10.0.0.2 or 172.16.4.1, ping 127.0.0.1 and 169.254.10.3."
    assert mask(text) == ([text], {"emails": 0, "ip_addresses": 0})


def test_version_numbers_are_not_ip_addresses():
    text = "Upgrade from 1.2.3 to 2.10.1.4.7 (build v1.2.3.4, Python 3.11.4)."
    assert mask(text) == ([text], {"emails": 0, "ip_addresses": 0})


def test_text_without_pii_is_unchanged():
    text = "Meet at 10.30 on 2024-05-01 @ the cafe; costs 3.5 EUR."
    assert mask(text) == ([text], {"emails": 0, "ip_addresses": 0})


def test_disabled_masking_and_disabled_kinds_leave_text_alone():
    text = "Mail ops@example.net from 8.8.4.4."
    assert mask(text, config=PiiConfig()) == ([text], {"emails": 0, "ip_addresses": 0})
    assert mask(text, config=PiiConfig(enabled=True, emails=False)) == (
        ["Mail ops@example.net from 192.0.2.1."],
        {"emails": 0, "ip_addresses": 1},
    )


def test_custom_replacements_are_inserted_literally():
    config = PiiConfig(enabled=True, email_replacement=r"<email\1>", ip_replacement="<ip>")
    assert mask("a@b.io at 8.8.4.4", config=config)[0] == [r"<email\1> at <ip>"]
