"""HTML, CSV/TSV, JSON and e-mail: readable text with provenance, and the bad inputs of each."""

from __future__ import annotations

import tracemalloc

import pytest
from edgerag.extract import ExtractionError, extract_text
from edgerag.formats import FormatLimits
from edgerag.formats.tabular import extract_csv

PAGE = b"""<!doctype html><html><head><title>Release notes</title><style>p{color:red}</style>
<script>var tracking = "ignored";</script></head><body>
<header>Site banner</header><nav><a href="/">Home</a> <a href="/x">Other</a></nav>
<main><h1>Version 2</h1><p>Faster &amp; smaller.</p><ul><li>New API</li><li>Fixes</li></ul>
<h2>Upgrade</h2><p>Run the <b>migration</b>.</p><table><tr><th>from</th><th>to</th></tr>
<tr><td>1.0</td><td>2.0</td></tr></table></main><aside>Ads</aside><footer>(c) us</footer></body></html>"""


def test_html_keeps_readable_text_by_heading_and_drops_boilerplate() -> None:
    doc = extract_text(PAGE, "text/html")
    assert doc.title_hint == "Release notes"
    assert [(s.section, s.text) for s in doc.iter_sections()] == [
        ("Version 2", "Version 2\n\nFaster & smaller.\n\n- New API\n- Fixes"),
        ("Version 2 > Upgrade", "Upgrade\n\nRun the migration.\n\nfrom | to\n1.0 | 2.0"),
    ]
    text = doc.full_text()
    for noise in ("tracking", "Site banner", "Home", "Ads", "(c) us", "color"):
        assert noise not in text


def test_html_with_only_scripts_has_no_readable_text() -> None:
    page = b"<html><head><script>alert(1)</script></head><body><script>x()</script></body></html>"
    with pytest.raises(ExtractionError, match=r"^no readable text"):
        extract_text(page, "text/html")


def test_csv_rows_carry_header_names_and_row_numbers_with_a_ragged_header() -> None:
    data = b'name,,role\nAda,1,engineer,extra\nBob,2,"night\nshift"\n'
    sections = list(extract_text(data, "text/csv").iter_sections())
    assert [(s.section, s.row_start, s.text) for s in sections] == [
        (
            "table",
            2,
            "name: Ada; column_2: 1; role: engineer; column_4: extra\n"
            "name: Bob; column_2: 2; role: night shift",
        )
    ]
    assert sections[0].rows_between(len(sections[0].text) - 5, len(sections[0].text)) == (3, 3)


def test_100000_rows_stream_in_batches_without_all_the_text_at_once() -> None:
    data = b"id,city,note\n" + b"".join(b"%d,Paris,row number %d\n" % (i, i) for i in range(100_000))
    limits = FormatLimits(row_batch=500)
    doc = extract_csv(data, None, limits=limits)
    tracemalloc.start()
    rows, largest = 0, 0
    for section in doc.iter_sections():
        rows += len(section.row_offsets)
        largest = max(largest, len(section.row_offsets))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rendered = 100_000 * len("id: 99999; city: Paris; note: row number 99999")
    assert rows == 100_000 and largest == 500
    assert peak < rendered / 4  # a batch at a time, not the whole rendered table


def test_the_row_limit_and_a_header_only_table() -> None:
    with pytest.raises(ExtractionError, match=r"more than 2 rows \(MAX_TABLE_ROWS\)"):
        list(extract_csv(b"a\n1\n2\n3\n", None, limits=FormatLimits(max_table_rows=2)).iter_sections())
    with pytest.raises(ExtractionError, match="no rows with values"):
        list(extract_text(b"a,b\n", "text/csv").iter_sections())


def test_tsv_is_split_on_tabs() -> None:
    doc = extract_text(b"name\tteam\nAda\tcore, infra\n", "text/tab-separated-values")
    assert doc.full_text() == "name: Ada; team: core, infra"


def test_json_values_with_their_paths_one_section_per_top_level_key() -> None:
    data = b'{"title": "Config", "users": [{"name": "Ada", "admin": true}], "odd key": null}'
    doc = extract_text(data, "application/json")
    assert doc.title_hint == "Config"
    assert [(s.section, s.text) for s in doc.iter_sections()] == [
        ("title", "title: Config"),
        ("users", "users[0].name: Ada\nusers[0].admin: true"),
        ('"odd key"', '"odd key": null'),
    ]


def test_invalid_json_says_where() -> None:
    with pytest.raises(ExtractionError, match=r"the JSON is not valid: .* line 1 column"):
        extract_text(b'{"a": ', "application/json")


EMAIL = b"""From: Ada <ada@example.com>
To: team@example.com
Subject: Launch plan
Date: Mon, 1 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/html; charset=utf-8

<p>HTML body</p>
--b2
Content-Type: text/plain; charset=utf-8

We launch on Friday.
--b2--
--b1
Content-Type: text/csv; name="tasks.csv"
Content-Disposition: attachment; filename="tasks.csv"

task,owner
deploy,Bob
--b1
Content-Type: image/png
Content-Disposition: attachment; filename="logo.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b1--
"""


def test_email_headers_body_and_text_attachments() -> None:
    doc = extract_text(EMAIL, "message/rfc822")
    assert doc.title_hint == "Launch plan"
    assert doc.metadata["from"] == "Ada <ada@example.com>"
    assert doc.metadata["subject"] == "Launch plan"
    sections = {s.section: s.text for s in doc.iter_sections()}
    assert sections["body"] == "We launch on Friday."  # text/plain preferred over the HTML part
    assert sections["attachment: tasks.csv"] == "task,owner\ndeploy,Bob"
    assert "From: Ada <ada@example.com>" in sections["headers"]
    assert "Attachments not indexed: logo.png" in sections["headers"]


def test_a_file_without_mail_headers_is_not_an_email() -> None:
    with pytest.raises(ExtractionError, match="not an e-mail"):
        extract_text(b"just some words", "message/rfc822")
