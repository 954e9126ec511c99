"""Reading CSV and XLSX deliveries into records: what a data officer's spreadsheet does to values.

In-process: the file reader on its own. The same files through the running
services are in tests/e2e/test_file_delivery.py.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import Workbook
from pydantic import BaseModel

from services.ingest.delivery_files import read_delivery
from services.ingest.models import RecordProblem
from services.ingest.rules import validate_records
from tests.helpers.files import zip_bomb
from tests.helpers.records import valid_record
from ttp.delivery_layout import COLUMNS, CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_lines
from ttp.problems import InvalidParam, Problem

AGB = "98000001"
HEADINGS = [c.heading for c in COLUMNS]


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def read_csv(text: str, charset: str | None = None) -> list[dict[str, Any]]:
    return read_delivery(text.encode(charset or "utf-8"), CSV_MEDIA_TYPE, charset, AGB).records


def test_a_spreadsheet_export_with_number_and_date_cells_gives_the_json_record() -> None:
    """Excel drops leading zeros of codes and BSNs and turns dates into date cells; the record is as in JSON."""
    record = valid_record("X-1", bsn="012345672", provider=AGB)
    record["hulpvorm"], record["referrer"], record["gemeente"] = "02", "08", "GM0014"
    by_heading = {
        "Recordnummer": "X-1", "Burgerservicenummer": 12345672, "Geboortedatum": dt.datetime.fromisoformat(
            record["birthDate"]), "Geslacht": "vrouw", "Postcode": "1234 ab", "Gemeentecode": 14,
        "Trajectnummer": "T-X-1", "Datum aanvang jeugdhulp": dt.date.fromisoformat(record["startDate"]),
        "Datum einde jeugdhulp": dt.date.fromisoformat(record["endDate"]), "Sector": "jeugdhulp",
        "Vrij toegankelijk": "Nee", "Hulpvorm": 2, "Verwijzer": 8.0, "Gestart met crisis": False,
        "Reden beëindiging jeugdhulp": 1, "Grondslag levering": "toestemming",
        "Toestemming gegeven door": "beide", "Datum toestemming": dt.date.fromisoformat(record["startDate"]),
        "Type informant meting 1": "Jeugdige", "Datum meting 1": record["measurements"][0]["measuredOn"],
        "Tevredenheid meting 1": 8, "Zonder hulp verder meting 1": 3.0,
        "Afname problematiek meting 1": "matige-verbetering", "Doelrealisatie meting 1": 1,
        "Type informant meting 2": "ouders", "Datum meting 2": record["measurements"][1]["measuredOn"],
        "Tevredenheid meting 2": "7", "Zonder hulp verder meting 2": 4,
    }
    headings = [h for h in HEADINGS if h in by_heading]
    (got,) = read_delivery(xlsx([headings, [by_heading[h] for h in headings]]), XLSX_MEDIA_TYPE, None, AGB).records
    assert got == {**record, "postcode": "1234 ab"}  # the postcode is normalised by the record contract
    valid, rejected = validate_records([got], AGB, dt.date.today())
    assert rejected == [] and valid[0].record.postcode == "1234AB"


def test_headings_match_whatever_the_case_accents_or_spacing() -> None:
    text = "".join(csv_lines([valid_record("H-1", provider=AGB)]))
    sloppy = text.replace("Reden beëindiging jeugdhulp", "reden  beeindiging_JEUGDHULP", 1)
    assert read_csv(sloppy) == read_csv(text)


def test_dutch_dates_and_comma_separated_files_and_windows_1252_are_read() -> None:
    record = valid_record("D-1", provider=AGB)
    text = "".join(csv_lines([record]))
    y, m, d = record["birthDate"].split("-")
    dutch = text.replace(record["birthDate"], f"{d}-{m}-{y}", 1).replace(";", ",")
    assert read_csv(dutch, "windows-1252") == read_csv(text)
    compact = text.replace(record["birthDate"], f"{y}{m}{d}", 1)
    assert read_csv(compact) == read_csv(text)


def test_a_value_that_does_not_convert_reaches_the_rules_unchanged() -> None:
    """No guessing: 'soms' for a boolean or 'acht' for a score is refused by the record rules at that field."""
    text = "".join(csv_lines([valid_record("V-1", provider=AGB)]))
    lines = text.split("\r\n")
    cells = lines[1].split(";")
    cells[HEADINGS.index("Gestart met crisis")] = "soms"
    cells[HEADINGS.index("Tevredenheid meting 1")] = "acht"
    (record,) = read_csv("\r\n".join([lines[0], ";".join(cells)]))
    _, (rejected,) = validate_records([record], AGB, dt.date.today())
    assert {(p.name, p.code) for p in rejected.problems} == {
        ("/records/0/startedInCrisis", "boolean-format"),
        ("/records/0/measurements/0/satisfaction", "satisfaction-range"),
    }


def test_locations_name_the_heading_as_written_and_groups_of_columns() -> None:
    text = "".join(csv_lines([valid_record("L-1", provider=AGB), valid_record("L-2", provider=AGB)]))
    text = text.replace("Doelrealisatie per doel meting 1", "doelrealisatie per doel meting 1", 1)
    delivery = read_delivery(text.encode(), CSV_MEDIA_TYPE, None, AGB)
    assert delivery.location("/records/1/birthDate") == "rij 3, kolom 'Geboortedatum'"
    assert delivery.location("/records/0/measurements/0/goalAttainment/perGoal/2") == \
        "rij 2, kolom 'doelrealisatie per doel meting 1'"
    assert delivery.location("/records/0/consent") == \
        "rij 2, kolommen 'Toestemming gegeven door', 'Datum toestemming'"
    assert delivery.location("/records/0") == "rij 2"
    assert delivery.location("/batchId") is None


def test_empty_rows_are_skipped_and_rows_keep_their_file_number() -> None:
    text = "".join(csv_lines([valid_record("R-1", provider=AGB), valid_record("R-2", provider=AGB)]))
    head, first, second, _ = text.split("\r\n")
    delivery = read_delivery("\r\n".join([head, first, ";;;", "", second]).encode(), CSV_MEDIA_TYPE, None, AGB)
    assert [r["recordId"] for r in delivery.records] == ["R-1", "R-2"]
    assert delivery.rows == [2, 5]


def test_without_an_agb_column_the_records_are_for_the_certificates_provider() -> None:
    text = "".join(csv_lines([valid_record("A-1", provider=AGB)]))
    head, row, _ = text.split("\r\n")
    i = HEADINGS.index("AGB-code aanbieder")
    drop = ";".join(c for j, c in enumerate(head.split(";")) if j != i) + "\r\n" + ";".join(
        c for j, c in enumerate(row.split(";")) if j != i)
    (record,) = read_delivery(drop.encode(), CSV_MEDIA_TYPE, None, "98000004").records
    assert record["providerAgb"] == "98000004"


class _Warned(BaseModel):
    """A receipt shape with problems in more than one list (as rejections and warnings)."""

    rejected: list[RecordProblem]
    warnings: list[RecordProblem]


def test_locate_places_every_per_record_problem_wherever_the_receipt_holds_it() -> None:
    text = "".join(csv_lines([valid_record(f"W-{i}", provider=AGB) for i in range(3)]))
    delivery = read_delivery(text.encode(), CSV_MEDIA_TYPE, None, AGB)
    receipt = _Warned(
        rejected=[RecordProblem(index=2, recordId="W-2", problems=[
            InvalidParam(name="/records/2/bsn", code="bsn-elfproef", reason="...")])],
        warnings=[RecordProblem(index=0, recordId="W-0", problems=[
            InvalidParam(name="/records/0/measurements/1/measuredOn", code="measurement-window", reason="...")])],
    )
    delivery.locate(receipt)
    assert receipt.rejected[0].row == 4
    assert receipt.rejected[0].problems[0].location == "rij 4, kolom 'Burgerservicenummer'"
    assert receipt.warnings[0].row == 2
    assert receipt.warnings[0].problems[0].location == "rij 2, kolom 'Datum meting 2'"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "file-empty"),
        ("".join(csv_lines([])).encode(), "file-empty"),
        ("".join(csv_lines([valid_record("S-1")])).replace("\r\nS-1", "\r\nS-1;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;extra")
         .encode(), "cell-without-heading"),
        ("".join(csv_lines([valid_record("S-1")])).replace("Postcode", "Geslacht", 1).encode(), "heading-doubled"),
        (b'Recordnummer;Geboortedatum\r\n"S-1;2012-01-01\r\n', "heading-missing"),
    ],
    ids=["empty", "no-rows", "stray-cell", "doubled", "missing"],
)
def test_a_malformed_csv_is_one_problem_for_the_whole_file(body: bytes, code: str) -> None:
    with pytest.raises(Problem) as info:
        read_delivery(body, CSV_MEDIA_TYPE, None, AGB)
    assert info.value.status == 400
    assert [p.code for p in info.value.invalid_params or []] == [code]


def test_more_rows_than_a_batch_takes_is_refused_before_reading_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import services.ingest.delivery_files as files

    monkeypatch.setattr(files, "MAX_BATCH_RECORDS", 2)
    text = "".join(csv_lines([valid_record(f"T-{i}", provider=AGB) for i in range(3)]))
    with pytest.raises(Problem) as info:
        read_delivery(text.encode(), CSV_MEDIA_TYPE, None, AGB)
    assert [p.code for p in info.value.invalid_params or []] == ["too-many-rows"]
    two = "".join(csv_lines([valid_record(f"T-{i}", provider=AGB) for i in range(2)]))
    assert len(read_delivery(two.encode(), CSV_MEDIA_TYPE, None, AGB).records) == 2


def test_the_samples_in_docs_are_one_delivery_in_three_formats_and_every_heading_is_documented() -> None:
    samples = Path(__file__).resolve().parents[2] / "docs" / "samples"
    records = [orjson.loads(line) for line in (samples / "levering.jsonl").read_bytes().splitlines() if line]
    assert 5 <= len(records) <= 50
    for name, media in (("levering.csv", CSV_MEDIA_TYPE), ("levering.xlsx", XLSX_MEDIA_TYPE)):
        assert read_delivery((samples / name).read_bytes(), media, None, AGB).records == records, name
    documented = (samples.parent / "delivery.md").read_text()
    # meting 2 is documented as "the same for the second measurement"
    assert [c.heading for c in COLUMNS if f"`{c.heading.replace('meting 2', 'meting 1')}`" not in documented] == []


def test_a_zip_bomb_is_refused_by_its_declared_size_before_openpyxl_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import services.ingest.delivery_files as files

    bomb = zip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    with pytest.raises(Problem) as info:
        read_delivery(bomb, XLSX_MEDIA_TYPE, None, AGB)
    assert [p.code for p in info.value.invalid_params or []] == ["file-too-large"]
    # negative control: without the size check the same body goes on to openpyxl
    monkeypatch.setattr(files, "XLSX_MAX_UNPACKED", 1 << 40)
    with pytest.raises(Problem) as info:
        read_delivery(bomb, XLSX_MEDIA_TYPE, None, AGB)
    assert [p.code for p in info.value.invalid_params or []] == ["file-unreadable"]
