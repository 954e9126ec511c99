"""The CSV/XLSX delivery layout: one row per trajectory, Dutch column headings.

Providers already deliver Beleidsinformatie Jeugd to CBS every half year as a
spreadsheet, with the field names of the CBS Informatieprotocol Beleidsinformatie
Jeugd (bijlage 2 Regeling Jeugdwet: Burgerservicenummer, Geboortedatum,
Geslacht, Postcode, Verwijzer, Hulpvorm, Gestart met crisis, Datum aanvang
jeugdhulp, Datum einde jeugdhulp, Reden beëindiging jeugdhulp, Type informant,
Tevredenheid, Zonder hulp verder). This module is the one table that maps those
headings to the JSON record fields, so that the reader in ingest, the writer
behind ``ttp generate --format`` and docs/delivery.md can never disagree.

A file row becomes exactly the record dict a JSON delivery would carry, and is
then validated by the same rules; nothing here judges a value. Conversions are
only the ones a spreadsheet forces on a data officer (a number cell for a code
drops its leading zero, a date cell is a date, "ja"/"nee" for booleans); a
value that does not convert is passed on unchanged so the record rules reject
it with their own code, at the same field.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

#: Media types of the two file formats (RFC 7111; ECMA-376 / IANA).
CSV_MEDIA_TYPE: Final = "text/csv"
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_MEDIA_TYPES: Final = frozenset({CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE})

#: A row carries at most this many measurements (the protocol: at most two per record).
MEASUREMENTS_PER_ROW: Final = 2

Kind = Literal["text", "code", "bsn", "agb", "gemeente", "date", "int", "bool", "gender", "informant", "goals"]
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """One heading of the layout and the record field it fills."""

    heading: str
    path: Path_
    kind: Kind
    required: bool = False
    #: What a data officer fills in, for docs/delivery.md.
    values: str = ""


_TRAJECTORY: Final[tuple[Column, ...]] = (
    Column("Recordnummer", ("recordId",), "text", True, "uw eigen unieke kenmerk van deze regel (A-Z, 0-9, . _ : -)"),
    Column("AGB-code aanbieder", ("providerAgb",), "agb", False,
           "8 cijfers; leeg of weggelaten: de AGB-code van uw certificaat"),
    Column("Burgerservicenummer", ("bsn",), "bsn", True,
           "9 cijfers (11-proef), of de CBS-code voor geen/onbekend BSN of ongeboren kind"),
    Column("Geboortedatum", ("birthDate",), "date", True, "JJJJ-MM-DD, DD-MM-JJJJ of JJJJMMDD"),
    Column("Geslacht", ("gender",), "gender", True, "V, M of O (ook: vrouw, man)"),
    Column("Postcode", ("postcode",), "text", True, "6 posities, bijv. 1011AB"),
    Column("Gemeentecode", ("gemeente",), "gemeente", True, "CBS-gemeentecode, bijv. 0363 of GM0363"),
    Column("Trajectnummer", ("trajectoryId",), "text", True, "uw kenmerk van het traject"),
    Column("Datum aanvang jeugdhulp", ("startDate",), "date", True, "als Geboortedatum"),
    Column("Datum einde jeugdhulp", ("endDate",), "date", True, "als Geboortedatum"),
    Column("Sector", ("sector",), "text", True, "jeugdhulp, jeugdbescherming of jeugdreclassering"),
    Column("Vrij toegankelijk", ("freelyAccessible",), "bool", True,
           "ja (vrij toegankelijke hulp) of nee (individuele voorziening)"),
    Column("Hulpvorm", ("hulpvorm",), "code", True, "CBS-code 01-04, 11-14"),
    Column("Verwijzer", ("referrer",), "code", True, "CBS-code 01-06, 08"),
    Column("Gestart met crisis", ("startedInCrisis",), "bool", True, "ja of nee"),
    Column("Reden beëindiging jeugdhulp", ("terminationReason",), "code", True, "CBS-code 01-05"),
    Column("Grondslag levering", ("legalBasis",), "text", True, "wettelijke-verplichting of toestemming"),
    Column("Toestemming gegeven door", ("consent", "givenBy"), "text", False,
           "jeugdige, ouder of beide (alleen bij toestemming)"),
    Column("Datum toestemming", ("consent", "givenOn"), "date", False, "als Geboortedatum (alleen bij toestemming)"),
)

_MEASUREMENT: Final[tuple[tuple[str, str, Kind, str], ...]] = (
    ("Type informant meting {n}", "informant", "informant", "jeugdige of ouder"),
    ("Datum meting {n}", "measuredOn", "date", "als Geboortedatum"),
    ("Tevredenheid meting {n}", "satisfaction", "int", "1 tot en met 10 (indicator 2)"),
    ("Zonder hulp verder meting {n}", "withoutHelp", "int", "1 tot en met 4 (indicator 3.1)"),
    ("Afname problematiek meting {n}", "problemChange", "text",
     "sterke-verbetering ... sterke-verslechtering (indicator 3.3)"),
    ("Doelrealisatie meting {n}", "goalAttainment", "int", "-1, 0, 1 of 2, over alle doelen (indicator 3.4)"),
    ("Doelrealisatie per doel meting {n}", "goalAttainment", "goals",
     "scores -1..2 per doel, gescheiden door ; (bijv. 2;1;2)"),
)


def _measurement_columns(n: int) -> tuple[Column, ...]:
    out = []
    for heading, field, kind, values in _MEASUREMENT:
        if field == "goalAttainment":
            path: Path_ = ("measurements", n - 1, "goalAttainment", "perGoal" if kind == "goals" else "overall")
        else:
            path = ("measurements", n - 1, field)
        out.append(Column(heading.format(n=n), path, kind, False, values))
    return tuple(out)


#: Every column of the layout, in the order the writer and the docs use.
COLUMNS: Final[tuple[Column, ...]] = _TRAJECTORY + tuple(
    c for n in range(1, MEASUREMENTS_PER_ROW + 1) for c in _measurement_columns(n)
)


def heading_key(heading: str) -> str:
    """Compare headings as a person reads them: case, accents and spacing do not matter.

    "Reden beeindiging jeugdhulp", "reden beëindiging  jeugdhulp" and the
    layout's own heading are the same column.
    """
    text = unicodedata.normalize("NFKD", heading)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.replace("_", " ").split()).casefold()


#: Column by normalised heading.
BY_KEY: Final[dict[str, Column]] = {heading_key(c.heading): c for c in COLUMNS}


# --- cell value -> record value ------------------------------------------------------------------

_TRUE: Final = frozenset({"ja", "j", "true", "waar", "1"})
_FALSE: Final = frozenset({"nee", "n", "false", "onwaar", "0"})
_GENDER: Final = {"v": "V", "vrouw": "V", "m": "M", "man": "M", "o": "O", "onbekend": "O", "overig": "O"}
_INFORMANT: Final = {"jeugdige": "jeugdige", "ouder": "ouder", "ouders": "ouder"}
_DMY: Final = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_YMD_COMPACT: Final = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DIGITS: Final = re.compile(r"^\d+$")
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _as_text(value: Any) -> str:
    """A cell as text; an integral number cell without its '.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value).strip()


def _date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return value
    if (m := _DMY.match(value)) or (m := _YMD_COMPACT.match(value)):
        parts = m.groups()
        year, month, day = (parts[2], parts[1], parts[0]) if len(parts[0]) <= 2 else parts
        try:
            return dt.date(int(year), int(month), int(day)).isoformat()
        except ValueError:
            return value
    return value


def _padded(value: Any, width: int) -> Any:
    """A code written as a number ('2', 2.0) with its leading zeros back ('02')."""
    text = _as_text(value)
    if _DIGITS.match(text) and len(text) <= width:
        return text.zfill(width)
    return text if isinstance(value, str) else value


def _int(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,3}", value):
        return int(value)
    return value


def _goals(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [_int(value)]
    if isinstance(value, str):
        return [_int(part.strip()) for part in value.split(";")]
    return value


def convert(column: Column, value: Any) -> Any:
    """The record value of one non-empty cell (unconvertible values pass through unchanged)."""
    kind = column.kind
    if kind == "date":
        return _date(value)
    if kind == "int":
        return _int(value)
    if kind == "goals":
        return _goals(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        word = _as_text(value).casefold()
        return True if word in _TRUE else False if word in _FALSE else word
    if kind == "code":
        return _padded(value, 2)
    if kind == "bsn":
        return _padded(value, 9)
    if kind == "agb":
        return _padded(value, 8)
    if kind == "gemeente":
        text = _as_text(value).upper()
        return "GM" + text.zfill(4) if _DIGITS.match(text) and len(text) <= 4 else text
    if kind == "gender":
        text = _as_text(value)
        return _GENDER.get(text.casefold(), text)
    if kind == "informant":
        text = _as_text(value)
        return _INFORMANT.get(text.casefold(), text)
    return _as_text(value)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def row_record(columns: list[Column | None], cells: Iterable[Any]) -> dict[str, Any] | None:
    """The record dict of one data row, or None for an empty row.

    ``columns`` holds, per file column, the layout column (None for a column
    the caller has already refused). Empty cells are left out, so a missing
    required value is reported as the JSON path reports it ("required").
    """
    record: dict[str, Any] = {}
    measurements: dict[int, dict[str, Any]] = {}
    for column, value in zip(columns, cells, strict=False):
        if column is None or _empty(value):
            continue
        path = column.path
        converted = convert(column, value.strip() if isinstance(value, str) else value)
        if path[0] == "measurements":
            assert isinstance(path[1], int)
            target = measurements.setdefault(path[1], {})
            for key in path[2:-1]:
                target = target.setdefault(str(key), {})
            target[str(path[-1])] = converted
        else:
            target = record
            for key in path[:-1]:
                target = target.setdefault(str(key), {})
            target[str(path[-1])] = converted
    if not record and not measurements:
        return None
    record["measurements"] = [measurements[k] for k in sorted(measurements)]
    return record


# --- record -> cells (the writer behind ttp generate --format and the samples) -------------------


def _get(record: dict[str, Any], path: Path_) -> Any:
    value: Any = record
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return None
            value = value[key]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
    return value


def record_cells(record: dict[str, Any]) -> list[Any]:
    """One file row for a JSON record, in :data:`COLUMNS` order (the inverse of :func:`row_record`)."""
    cells: list[Any] = []
    for column in COLUMNS:
        value = _get(record, column.path)
        if value is None:
            cells.append("")
        elif column.kind == "bool" and isinstance(value, bool):
            cells.append("ja" if value else "nee")
        elif column.kind == "goals":
            cells.append(";".join(str(v) for v in value))
        elif column.kind == "gemeente" and isinstance(value, str) and value.startswith("GM"):
            cells.append(value[2:])
        else:
            cells.append(value)
    return cells


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV text, heading first, ';'-separated as Dutch Excel writes it."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow([c.heading for c in COLUMNS])
    yield buf.getvalue()
    for record in records:
        buf.seek(0)
        buf.truncate()
        writer.writerow(record_cells(record))
        yield buf.getvalue()


def write_csv(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write a UTF-8 CSV delivery; returns the number of records."""
    lines = 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        for line in csv_lines(records):
            fh.write(line)
            lines += 1
    return lines - 1


def write_xlsx(records: Iterable[dict[str, Any]], out: Path | io.BytesIO) -> int:
    """Write an XLSX delivery (streaming, openpyxl write-only); returns the number of records.

    Dates are written as date cells and codes as text, as a data officer's
    export does; the reader accepts number cells for codes too.
    """
    from openpyxl import Workbook  # imported here: ``ttp`` must start in a fraction of a second

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Levering")
    ws.append([c.heading for c in COLUMNS])
    n = 0
    for record in records:
        row: list[Any] = []
        for column, value in zip(COLUMNS, record_cells(record), strict=True):
            if column.kind == "date" and isinstance(value, str) and _ISO_DATE.match(value):
                row.append(dt.date.fromisoformat(value))
            elif isinstance(value, (dict, list)):
                row.append(str(value))  # not a layout value: written as text, refused on reading
            else:
                row.append(value if value != "" else None)
        ws.append(row)
        n += 1
    wb.save(out)
    return n
