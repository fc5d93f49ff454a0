"""How the archive commands print rows: an aligned text table, CSV or JSON.

Rows are dicts of plain Python values (`pyarrow.Table.to_pylist`, dataclass fields).
One rule for every format: dates and timestamps are ISO-8601, None is an empty cell
(null in JSON), and a list or struct is JSON text in a CSV cell, so a cell never needs
guessing.

CSV is opened by spreadsheets, which run a cell starting with `=`, `+`, `-` or `@` as a
formula (OWASP's "CSV injection"): a text cell starting with one of those, a tab or a
carriage return is written with a `'` in front (`=HYPERLINK(...)` as `'=HYPERLINK(...)`).
Only text gets the quote: a number is written as a number (`-3`, not `'-3`), and a
date, boolean or JSON list never starts with those characters. JSON output is left as is.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import pandas as pd

OutputFormat = Literal["table", "csv", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

Row = Mapping[str, Any]


def plain(value: Any) -> Any:
    """`value` as JSON types: dates and timestamps as ISO-8601 strings, tuples as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a loader's DataFrame as plain Python values (dates, datetimes, lists)."""
    import pyarrow as pa

    rows: list[dict[str, Any]] = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    return rows


def cell(value: Any) -> str:
    """`value` as the text of one CSV cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | Mapping):
        return json.dumps(plain(value), ensure_ascii=False)
    return str(value)


def short_time(value: datetime | None) -> str:
    """A UTC timestamp for a table: "2025-11-24 00:46:07Z"."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}Z"


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned text table with a header line; numbers right-aligned, one line per row."""
    texts = [[" ".join(cell(value).split()) for value in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(columns))
    ]
    widths = [max([len(name), *(len(text[i]) for text in texts)]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    lines = [line(columns), line(["-" * width for width in widths])]
    lines.extend(line(text) for text in texts)
    return "\n".join(lines) + "\n"


def render_csv(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """CSV with a header line (RFC 4180 quoting, "\\n" line ends)."""
    buffer = io.StringIO()
    write_csv(buffer, columns, rows)
    return buffer.getvalue()


def write_csv(stream: IO[str], columns: Sequence[str], rows: Sequence[Row]) -> None:
    # Python's writer quotes a cell holding a line end only if it is in its lineterminator:
    # with "\n" alone, a carriage return inside a cell would go out bare and split the row
    # for most readers. So each row is written with "\r\n" (every CR or LF in a cell
    # quoted), and that line end is then written as "\n".
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    for cells in [list(columns), *([csv_cell(row.get(name)) for name in columns] for row in rows)]:
        line.seek(0)
        line.truncate()
        writer.writerow(cells)
        stream.write(line.getvalue().removesuffix("\r\n") + "\n")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes a cell to be a formula by (OWASP's list)."""


def csv_cell(value: Any) -> str:
    """`value` as one CSV cell, a text that a spreadsheet would run as a formula quoted."""
    text = cell(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return f"'{text}"
    return text


def render_json(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """A JSON array of objects with `columns` as keys, in order."""
    objects = [{name: plain(row.get(name)) for name in columns} for row in rows]
    return json.dumps(objects, ensure_ascii=False, indent=2) + "\n"


def emit(text: str | bytes) -> None:
    """Write `text` (bytes as they are) to stdout; a reader that went away (`| head`) is
    not an error."""
    try:
        if isinstance(text, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(text)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
