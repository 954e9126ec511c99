"""CSV and XLSX deliveries: the files providers already make for CBS, read into JSON records.

Each data row becomes the record dict a JSON delivery would carry (layout in
:mod:`ttp.delivery_layout`, documented in docs/delivery.md), and the batch then
goes through the one validation and delivery path. So a CSV, an XLSX and a JSON
delivery of the same records give the same receipt and the same figures; the
only addition is where each problem sits in the file: the receipt's problems
(rejections, and warnings wherever a receipt carries them) get the row
(``row``) and a ``location`` such as ``rij 17, kolom 'Geboortedatum'``.

A file that is malformed as a whole (unreadable, no heading row, a required
heading missing, an unknown or doubled heading, more rows than a batch takes)
is a 400 problem naming what is wrong, and nothing of it is processed.

Privacy: the body holds BSNs and birth dates, so it is read from memory only
(never spooled to a temporary file) and no message repeats a cell value. A
heading is repeated only when it looks like a heading (words), never when it
could be a value, as when a file has no heading row at all.

Robustness and speed: the body limit of the service applies before this
module sees a byte. An XLSX is a zip; before it is opened the declared
unpacked size of its parts is checked (the zip module never inflates a part
beyond its declared size), so a small "zip bomb" cannot fill the memory of
ingest. The sheet is read by python-calamine (Rust; 10,000 rows in about 0.4 s
of CPU, where openpyxl's read-only mode took 8.8 s, too slow for a service
that ingests 20,000 records a second); CSV rows stream through the csv module;
reading stops at the first row beyond the batch limit.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel

from services.ingest.models import MAX_BATCH_RECORDS
from ttp.delivery_layout import BY_KEY, COLUMNS, CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Column, Path_, heading_key, row_record
from ttp.problems import InvalidParam, Problem

#: Most bytes the parts of an XLSX may unpack to; a 10,000-row delivery unpacks to about 20 MB.
XLSX_MAX_UNPACKED: Final = 256 * 1024 * 1024

#: A heading is repeated in a message only if it reads as one: letters, spaces and a little
#: punctuation, with no run of more than two digits (so never a BSN, date or postcode).
_SAFE_HEADING: Final = re.compile(r"^(?!.*\d{3})[\w \-'().,/]{1,64}$")
_POINTER: Final = re.compile(r"^/records/(\d+)(/.*)?$")


@dataclass
class FileDelivery:
    """The records of a delivered file and where each came from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    #: File row of each record (row 1 is the heading row), by record index.
    rows: list[int] = field(default_factory=list)
    #: The heading as written in the file, by layout column.
    headings: dict[Path_, str] = field(default_factory=dict)

    def location(self, pointer: str) -> str | None:
        """``rij 17, kolom 'Geboortedatum'`` for ``/records/15/birthDate``; None if not about a record."""
        m = _POINTER.match(pointer)
        if m is None or int(m.group(1)) >= len(self.rows):
            return None
        where = f"rij {self.rows[int(m.group(1))]}"
        rest: Path_ = tuple(int(p) if p.isdigit() else p for p in (m.group(2) or "").split("/")[1:])
        while rest:
            hits = [c for c in COLUMNS if c.path[: len(rest)] == rest]
            if hits:
                names = [f"'{self.headings.get(c.path, c.heading)}'" for c in hits]
                return f"{where}, kolom {names[0]}" if len(names) == 1 else f"{where}, kolommen {', '.join(names)}"
            rest = rest[:-1]
        return where

    def locate(self, receipt: BaseModel) -> None:
        """Add the file row and column to every record problem of ``receipt``, wherever it sits.

        Walks the receipt's fields instead of naming them, so rejections and
        warnings (and any later list of per-record problems that locates them
        by record index and JSON pointer) are placed the same way: a model
        with ``index`` and ``row`` fields (``services.ingest.models.RecordProblem``) gets the
        row, every :class:`InvalidParam` its location.
        """
        for item in _models(receipt):
            index = getattr(item, "index", None)
            if "row" in type(item).model_fields and isinstance(index, int) and 0 <= index < len(self.rows):
                item.row = self.rows[index]  # type: ignore[attr-defined]
            elif isinstance(item, InvalidParam):
                item.location = self.location(item.name)


def _models(model: BaseModel) -> Iterator[BaseModel]:
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name))


def _walk(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        yield from _models(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)


def _bad(
    detail: str, name: str = "body", code: str = "file-unreadable", reason: str | None = None,
    location: str | None = None,
) -> Problem:
    return Problem(400, detail + " Nothing of the file was processed.",
                   invalid_params=[InvalidParam(name=name, code=code, reason=reason or detail, location=location)])


def _shown(heading: str, position: int) -> str:
    return f"'{heading}'" if _SAFE_HEADING.match(heading) else f"kolom {position} (naam niet herhaald)"


def _columns(cells: Iterable[Any], delivery: FileDelivery) -> list[Column | None]:
    """Map the heading row to layout columns; a 400 for unknown, doubled or missing headings."""
    columns: list[Column | None] = []
    unknown: list[str] = []
    doubled: list[str] = []
    for position, cell in enumerate(cells, start=1):
        heading = "" if cell is None else str(cell).strip()
        if not heading:
            columns.append(None)
            continue
        column = BY_KEY.get(heading_key(heading))
        if column is None:
            unknown.append(_shown(heading, position))
        elif column.path in delivery.headings:
            doubled.append(_shown(heading, position))
        else:
            delivery.headings[column.path] = heading
        columns.append(column)
    if not delivery.headings:
        raise _bad("Row 1 is not a heading row: none of its cells is a heading of the delivery layout "
                   "(docs/delivery.md).", location="rij 1", code="heading-row-missing")
    if unknown:
        raise _bad(f"Row 1 has headings that are not in the delivery layout: {', '.join(unknown)}.",
                   location="rij 1", code="heading-unknown",
                   reason="Every column must have a heading of the layout (docs/delivery.md), so that no "
                   "value is stored or dropped without you knowing.")
    if doubled:
        raise _bad(f"Row 1 has a heading twice: {', '.join(doubled)}.", location="rij 1", code="heading-doubled")
    missing = [c.heading for c in COLUMNS if c.required and c.path not in delivery.headings]
    if missing:
        raise _bad(f"Required column missing: {', '.join(repr(h) for h in missing)}.", location="rij 1",
                   code="heading-missing", reason="These headings are required: " + ", ".join(missing) + ".")
    return columns


def _read_rows(rows: Iterator[tuple[Any, ...] | list[Any]], provider_agb: str) -> FileDelivery:
    delivery = FileDelivery()
    try:
        heading = next(rows)
    except StopIteration:
        raise _bad("The file is empty.", code="file-empty") from None
    columns = _columns(heading, delivery)
    fill_agb = ("providerAgb",) not in delivery.headings
    for number, cells in enumerate(rows, start=2):
        cells = list(cells)
        stray = [i for i, v in enumerate(cells, start=1)
                 if (i > len(columns) or columns[i - 1] is None) and v is not None and str(v).strip()]
        if stray:
            raise _bad(f"Row {number} has a value in column {stray[0]}, which has no heading.",
                       location=f"rij {number}", code="cell-without-heading")
        record = row_record(columns, cells)
        if record is None:
            continue  # an empty row: spreadsheets end with them
        if len(delivery.records) >= MAX_BATCH_RECORDS:
            raise _bad(f"The file has more than {MAX_BATCH_RECORDS} rows; split it into batches.",
                       code="too-many-rows")
        if fill_agb:
            record["providerAgb"] = provider_agb
        delivery.records.append(record)
        delivery.rows.append(number)
    if not delivery.records:
        raise _bad("The file has a heading row but no data rows.", code="file-empty")
    return delivery


def _csv_rows(body: bytes, charset: str) -> Iterator[list[str]]:
    try:
        text = body.decode(charset)
    except LookupError:
        raise _bad(f"Unknown charset {charset!r} in Content-Type.", name="Content-Type",
                   code="charset-unknown") from None
    except UnicodeDecodeError:
        raise _bad(f"The file is not valid {charset}. A CSV saved by Excel is often windows-1252: send it with "
                   "Content-Type: text/csv; charset=windows-1252.", code="charset-mismatch") from None
    text = text.removeprefix("\ufeff")  # the byte order mark Excel writes before "CSV UTF-8"
    first = text[: text.find("\n")] if "\n" in text else text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max(";,\t", key=first.count))
    try:
        yield from reader
    except csv.Error:
        raise _bad(f"The CSV cannot be read at line {reader.line_num} (an unclosed quote?).",
                   code="csv-malformed") from None


def _xlsx_rows(body: bytes) -> Iterator[list[Any]]:
    """The rows of the first worksheet, from row 1 (python-calamine; empty cells are "")."""
    from python_calamine import CalamineWorkbook  # imported here: only XLSX deliveries pay for it

    unreadable = "The body is not a readable XLSX workbook (Office Open XML spreadsheet)."
    try:
        parts = zipfile.ZipFile(io.BytesIO(body)).infolist()
    except (zipfile.BadZipFile, ValueError):
        raise _bad(unreadable) from None
    if sum(p.file_size for p in parts) > XLSX_MAX_UNPACKED:
        raise _bad(f"The XLSX unpacks to more than {XLSX_MAX_UNPACKED // 2**20} MiB; it cannot be a delivery "
                   "of at most 10,000 rows.", code="file-too-large")
    try:
        sheet = CalamineWorkbook.from_filelike(io.BytesIO(body)).get_sheet_by_index(0)
        rows = sheet.iter_rows()
    except Exception:  # a damaged workbook raises many kinds of error: all mean "unreadable"
        raise _bad(unreadable) from None
    yield from rows


def read_delivery(body: bytes, media_type: str, charset: str | None, provider_agb: str) -> FileDelivery:
    """The records of a CSV (``text/csv``) or XLSX body; the first sheet of a workbook.

    ``provider_agb`` (from the caller's certificate) fills ``providerAgb``
    when the file has no "AGB-code aanbieder" column.
    """
    if media_type == CSV_MEDIA_TYPE:
        return _read_rows(_csv_rows(body, charset or "utf-8-sig"), provider_agb)
    if media_type == XLSX_MEDIA_TYPE:
        return _read_rows(_xlsx_rows(body), provider_agb)
    raise ValueError(media_type)
