"""Real documents through the whole stack: upload, ingest, search with provenance, failures with reasons."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import StackHarness, Tenant
from tests.unit.format_samples import docx_paragraph, encrypt_pdf, make_docx, make_pdf, make_xlsx

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _upload(tenant: Tenant, name: str, data: bytes, content_type: str) -> dict[str, Any]:
    response = await tenant.client.post("/v1/documents", files={"file": (name, data, content_type)})
    assert response.status_code == 202, response.text
    return response.json()["document"]


async def _document(tenant: Tenant, document_id: str) -> dict[str, Any]:
    response = await tenant.client.get(f"/v1/documents/{document_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def _search(tenant: Tenant, query: str) -> list[dict[str, Any]]:
    response = await tenant.client.post("/v1/search", json={"query": query, "mode": "keyword"})
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_a_pdf_is_searchable_by_page(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    pages = [[f"Page {n} is about topic{n} and nothing else."] for n in range(1, 6)]
    doc = await _upload(tenant, "report.pdf", make_pdf(pages), "application/pdf")
    await harness.ingest()
    assert (await _document(tenant, doc["id"]))["status"] == "ready"
    (hit,) = await _search(tenant, "topic4")
    assert hit["document_id"] == doc["id"]
    assert hit["provenance"]["page_start"] == hit["provenance"]["page_end"] == 4


async def test_a_spreadsheet_row_is_found_by_its_values_with_sheet_and_row(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    rows: list[list[str | int | float]] = [["name", "city"]]
    rows += [[f"person{n}", f"city{n}"] for n in range(2, 2000)]
    doc = await _upload(tenant, "people.xlsx", make_xlsx({"Staff": rows}), "application/octet-stream")
    await harness.ingest()
    assert (await _document(tenant, doc["id"]))["status"] == "ready"
    (hit,) = await _search(tenant, "person1234")
    provenance = hit["provenance"]
    assert provenance["section"] == "Staff"
    # person1234 is on spreadsheet row 1234 (the header is row 1, person2 is row 2).
    assert provenance["row_start"] <= 1234 <= provenance["row_end"]


async def test_csv_and_docx_and_html_are_accepted_and_ingested(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    docx = make_docx(docx_paragraph("Setup", "Heading1") + docx_paragraph("Install the quokka agent."))
    ids = [
        (await _upload(tenant, "a.csv", b"animal,home\nwombat,burrow\n", "text/csv"))["id"],
        (await _upload(tenant, "b.docx", docx, DOCX))["id"],
        (await _upload(tenant, "c.html", b"<title>T</title><p>Ocelots nap.</p>", "text/html"))["id"],
    ]
    await harness.ingest()
    assert [(await _document(tenant, i))["status"] for i in ids] == ["ready"] * 3
    assert (await _search(tenant, "quokka"))[0]["provenance"]["section"] == "Setup"
    assert (await _search(tenant, "wombat"))[0]["provenance"]["row_start"] == 2
    assert (await _search(tenant, "ocelots"))[0]["document_id"] == ids[2]


async def test_bad_pdfs_end_failed_with_their_reason_and_leave_nothing_indexed(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    cases = {
        "locked.pdf": (encrypt_pdf(make_pdf([["secret plans"]])), "the PDF is password-protected"),
        "scan.pdf": (make_pdf([[], []]), "no extractable text: scanned PDFs need OCR"),
        "cut.pdf": (make_pdf([["words"]] * 4)[:300], "the PDF is damaged"),
    }
    ids = {
        name: (await _upload(tenant, name, data, "application/pdf"))["id"]
        for name, (data, _) in cases.items()
    }
    await harness.ingest()
    for name, (_, reason) in cases.items():
        doc = await _document(tenant, ids[name])
        assert doc["status"] == "failed" and doc["chunk_count"] == 0, doc
        assert doc["error"].startswith(reason), doc
    assert await _search(tenant, "secret plans") == []


async def test_a_pdf_sent_as_text_is_still_refused(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    response = await tenant.client.post(
        "/v1/documents", files={"file": ("notes.txt", make_pdf([["hi"]]), "text/plain")}
    )
    assert response.status_code == 415
    assert "application/pdf" in response.json()["detail"]
