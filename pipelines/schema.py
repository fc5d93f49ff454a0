"""The archive's tables: explicit Arrow schemas built from the item and record classes.

Column types follow the Python annotations, never the data: str -> string, int -> int64,
bool -> bool, date -> date32, datetime -> timestamp[us, UTC], a `Literal` -> string,
`X | None` -> a nullable X, list[X] -> list<element: X>, a list of item parts (related
topics) -> list<struct<...>>. A nested part held directly (primary_institute, image) is
flattened to `<field>_<subfield>` columns. An all-None or empty batch therefore gets the
same types as any other. Every schema carries `SCHEMA_VERSION` in its metadata, which
Parquet keeps in each file.

Tables are built column-wise: one Python list per column, then one Arrow array per list.
A `TableBuilder` checks each row against the annotations as it is added (so a bad item
fails where it is added) and converts the whole batch to Arrow once, at the end.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeGuard, get_args

import pyarrow as pa

from crawler.items import NOT_ARCHIVED, ClinicalTrial, HealthTopicPage, TopicLink
from pipelines.errors import InvalidRecordError
from pipelines.records import JournalArticleRecord, Observation, RunRecord, VersionRecord

SCHEMA_VERSION = 1
"""Bumped whenever a table's columns change; readers refuse files from a newer version."""
SCHEMA_VERSION_KEY = b"medlineplus_archive.schema_version"
"""Parquet file metadata key holding the schema version (ASCII digits)."""
TABLE_KEY = b"medlineplus_archive.table"
"""Parquet file metadata key holding the table name."""

TableName = Literal[
    "runs", "observations", "topics", "links", "clinical_trials", "journal_articles"
]
TABLES: tuple[TableName, ...] = get_args(TableName)

TOPIC_KEY: tuple[str, ...] = ("language", "slug")
"""Columns naming a topic."""
VERSION_KEY: tuple[str, ...] = ("language", "slug", "last_updated", "content_hash")
"""Columns naming one version of a topic; a version is stored once, ever."""
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

# HealthTopicPage fields with a table of their own.
_PAGE_CHILD_TABLES = ("links", "clinical_trials", "journal_articles")


@dataclass(frozen=True, slots=True)
class _Column:
    field: pa.Field
    value: Callable[[Any], Any]
    """Row object -> the Python value Arrow converts (checked, nested parts as dicts)."""
    check: Callable[[Any], None]
    """Raises TypeError or ValueError when a non-None converted value does not fit."""


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(`X`, True) for `X | None`, (`hint`, False) otherwise."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {hint!r}: only `X | None` maps to a column")
        return args[0], True
    return hint, False


def _is_part(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _part_fields(cls: type) -> Iterator[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    for part_field in dataclasses.fields(cls):
        yield part_field.name, hints[part_field.name]


def arrow_type(hint: Any) -> tuple[pa.DataType, bool]:
    """The Arrow type of a field annotated `hint`, and whether it is nullable."""
    inner, nullable = _unwrap_optional(hint)
    origin = typing.get_origin(inner)
    if origin is Literal:
        if not all(isinstance(arg, str) for arg in typing.get_args(inner)):
            raise TypeError(f"unsupported {inner!r}: only string literals map to a column")
        return pa.string(), nullable
    if origin is list:
        (element_hint,) = typing.get_args(inner)
        element_type, element_nullable = arrow_type(element_hint)
        return pa.list_(pa.field("element", element_type, nullable=element_nullable)), nullable
    if _is_part(inner):
        struct_fields = [
            pa.field(name, *arrow_type(part_hint)) for name, part_hint in _part_fields(inner)
        ]
        return pa.struct(struct_fields), nullable
    scalar_types: dict[Any, pa.DataType] = {
        str: pa.string(),
        int: pa.int64(),
        bool: pa.bool_(),
        float: pa.float64(),
        date: pa.date32(),
        datetime: UTC_TIMESTAMP,
    }
    if inner in scalar_types:
        return scalar_types[inner], nullable
    raise TypeError(f"no Arrow type for {hint!r}")


def _identity(value: Any) -> Any:
    return value


def _checker(hint: Any) -> Callable[[Any], None]:
    """A function checking a converted, non-None value of a field annotated `hint`.

    Mirrors `arrow_type`: what passes converts to the column's Arrow type without error.
    """
    inner, _ = _unwrap_optional(hint)
    origin = typing.get_origin(inner)
    if origin is Literal:
        return _check_instance(str)
    if origin is list:
        (element_hint,) = typing.get_args(inner)
        _, element_nullable = _unwrap_optional(element_hint)
        element = _checker(element_hint)

        def check_list(value: Any) -> None:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            for item in value:
                if item is None:
                    if not element_nullable:
                        raise ValueError("a list holds a missing value")
                else:
                    element(item)

        return check_list
    if _is_part(inner):
        parts = [
            (name, _unwrap_optional(part_hint)[1], _checker(part_hint))
            for name, part_hint in _part_fields(inner)
        ]

        def check_part(value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeError(f"expected {inner.__name__}, got {type(value).__name__}")
            for name, nullable, check in parts:
                item = value[name]
                if item is None:
                    if not nullable:
                        raise ValueError(f"{inner.__name__}.{name} is missing")
                else:
                    check(item)

        return check_part
    if inner is bool:
        return _check_instance(bool)
    if inner is int:
        return _check_int
    if inner is float:
        return _check_float
    if inner is date:
        return _check_date
    return _check_instance(inner)


def _check_instance(kind: type) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")

    return check


def _check_int(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected int, got {type(value).__name__} {value!r}")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} does not fit in 64 bits")


def _check_float(value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected float, got {type(value).__name__} {value!r}")


def _check_date(value: Any) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"expected a date, got {type(value).__name__} {value!r}")


def _converter(hint: Any) -> Callable[[Any], Any]:
    """A function turning a field's Python value into what `pa.array` takes, checked."""
    inner, _ = _unwrap_optional(hint)
    origin = typing.get_origin(inner)
    if origin is Literal:
        allowed = frozenset(typing.get_args(inner))

        def check_literal(value: Any) -> Any:
            if value is not None and value not in allowed:
                raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
            return value

        return check_literal
    if inner is datetime:
        return _aware
    if origin is list:
        (element_hint,) = typing.get_args(inner)
        element = _converter(element_hint)
        if element is _identity:
            return _identity

        def convert_list(value: Any) -> Any:
            return None if value is None else [element(item) for item in value]

        return convert_list
    if _is_part(inner):
        converters = [(name, _converter(part_hint)) for name, part_hint in _part_fields(inner)]

        def convert_part(value: Any) -> Any:
            if value is None:
                return None
            return {name: convert(getattr(value, name)) for name, convert in converters}

        return convert_part
    return _identity


def _aware(value: Any) -> Any:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one (UTC)")
    return value


def _getter(access: Callable[[Any], Any], name: str, convert: Callable[[Any], Any]) -> Any:
    if convert is _identity:
        return lambda row: getattr(access(row), name)
    return lambda row: convert(getattr(access(row), name))


def _record_columns(
    cls: type, access: Callable[[Any], Any] = _identity, *, skip: Sequence[str] = ()
) -> list[_Column]:
    """One column per field of `cls` (parts held directly flattened), read via `access`."""
    columns: list[_Column] = []
    for name, hint in _part_fields(cls):
        if name in skip:
            continue
        inner, nullable = _unwrap_optional(hint)
        if _is_part(inner):
            part_access = _part_access(access, name)
            for column in _record_columns(inner, part_access):
                flat = column.field.with_name(f"{name}_{column.field.name}")
                columns.append(
                    _Column(
                        flat.with_nullable(flat.nullable or nullable), column.value, column.check
                    )
                )
            continue
        data_type, nullable = arrow_type(hint)
        columns.append(
            _Column(
                pa.field(name, data_type, nullable=nullable),
                _getter(access, name, _converter(hint)),
                _checker(hint),
            )
        )
    return columns


class _Absent:
    """Stands in for a missing nested part, so its flattened columns read as None."""

    def __getattr__(self, name: str) -> None:
        return None


_ABSENT = _Absent()


def _part_access(access: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    def part(row: Any) -> Any:
        value = getattr(access(row), name)
        return _ABSENT if value is None else value

    return part


def _page(row: VersionRecord) -> HealthTopicPage:
    return row.page


def _key_columns(access: Callable[[Any], VersionRecord]) -> list[_Column]:
    """The version key columns, read from the page of the row's `VersionRecord`."""
    by_name = {
        column.field.name: column for column in _record_columns(HealthTopicPage, skip=NOT_ARCHIVED)
    }
    return [
        _Column(
            by_name[name].field,
            _compose(by_name[name].value, _page, access),
            by_name[name].check,
        )
        for name in VERSION_KEY
    ]


def _compose(*functions: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`functions` applied right to left, like f(g(h(row)))."""

    def composed(row: Any) -> Any:
        for function in reversed(functions):
            row = function(row)
        return row

    return composed


def _first(row: tuple[Any, Any]) -> Any:
    return row[0]


def _second(row: tuple[Any, Any]) -> Any:
    return row[1]


def _topic_columns() -> list[_Column]:
    return [
        *_key_columns(_identity),
        *_record_columns(VersionRecord, skip=("page",)),
        *_record_columns(
            HealthTopicPage, _page, skip=(*VERSION_KEY, *_PAGE_CHILD_TABLES, *NOT_ARCHIVED)
        ),
    ]


def _entry_columns(entry: type) -> list[_Column]:
    """Columns of a (VersionRecord, entry) row: version key, run_id, the entry's fields."""
    return [
        *_key_columns(_first),
        *_record_columns(
            VersionRecord, _first, skip=("page", "observed_at", "warc_file", "warc_offset")
        ),
        *_record_columns(entry, _second),
    ]


_COLUMNS: dict[TableName, list[_Column]] = {
    "runs": _record_columns(RunRecord),
    "observations": _record_columns(Observation),
    "topics": _topic_columns(),
    "links": _entry_columns(TopicLink),
    "clinical_trials": _entry_columns(ClinicalTrial),
    "journal_articles": _record_columns(JournalArticleRecord),
}


def _schema(table: TableName) -> pa.Schema:
    metadata = {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode("ascii"), TABLE_KEY: table.encode()}
    return pa.schema([column.field for column in _COLUMNS[table]], metadata=metadata)


SCHEMAS: Mapping[TableName, pa.Schema] = types.MappingProxyType(
    {table: _schema(table) for table in TABLES}
)
"""The schema of every table, with the schema version and table name in its metadata."""


def is_table_name(name: str) -> TypeGuard[TableName]:
    """True when `name` is one of the archive's tables."""
    return name in TABLES


def table_schema(table: TableName) -> pa.Schema:
    """The schema of `table`; KeyError for an unknown table."""
    return SCHEMAS[table]


def file_schema_version(metadata: Mapping[bytes, bytes] | None) -> int | None:
    """The schema version recorded in a Parquet file's metadata, None when absent or bad."""
    raw = (metadata or {}).get(SCHEMA_VERSION_KEY)
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


class TableBuilder:
    """Rows of one table, checked as they are added and converted to Arrow at the end.

    `prepare` checks and converts rows to per-column values without keeping them (an
    InvalidRecordError names the column); `extend` keeps prepared rows; `to_table` builds
    the Arrow table. Preparing rows for several builders before extending any of them
    adds an item to several tables all or nothing.
    """

    CHUNK_ROWS = 512
    """Rows kept as Python values before they are packed into an Arrow chunk: a crawl's
    rows then cost their Arrow size, not several times that in Python objects."""

    def __init__(self, table: TableName) -> None:
        self.table: TableName = table
        """The table the rows belong to."""
        self._columns = _COLUMNS[table]
        self._values: list[list[Any]] = [[] for _ in self._columns]
        self._pending = 0
        self._chunks: list[pa.Table] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def prepare(self, rows: Sequence[Any]) -> list[list[Any]]:
        """Per-column values of `rows`, checked; InvalidRecordError at the first bad value."""
        prepared: list[list[Any]] = []
        for column in self._columns:
            name = column.field.name
            nullable = column.field.nullable
            check = column.check
            values = []
            for position, row in enumerate(rows):
                try:
                    value = column.value(row)
                    if value is None:
                        if not nullable:
                            raise ValueError(f"missing value in row {position}")
                    else:
                        check(value)
                except (ValueError, TypeError, AttributeError) as error:
                    raise InvalidRecordError(self.table, name, str(error)) from error
                values.append(value)
            prepared.append(values)
        return prepared

    def extend(self, prepared: list[list[Any]]) -> None:
        """Keep rows made by `prepare`."""
        for values, more in zip(self._values, prepared, strict=True):
            values.extend(more)
        added = len(prepared[0]) if prepared else 0
        self._rows += added
        self._pending += added
        if self._pending >= self.CHUNK_ROWS:
            self._chunks.append(self._pack())

    def append(self, rows: Sequence[Any]) -> None:
        """Check and keep `rows`."""
        self.extend(self.prepare(rows))

    def to_table(self) -> pa.Table:
        """Every row kept so far, as a table with the table's schema."""
        tables = [*self._chunks, self._pack()]
        self._chunks = [pa.concat_tables(tables)] if self._rows else []
        return self._chunks[0] if self._chunks else tables[-1]

    def _pack(self) -> pa.Table:
        """The pending Python values as an Arrow table; they are let go."""
        arrays = []
        for column, values in zip(self._columns, self._values, strict=True):
            try:
                arrays.append(pa.array(values, type=column.field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
                raise InvalidRecordError(self.table, column.field.name, str(error)) from error
        self._values = [[] for _ in self._columns]
        self._pending = 0
        return pa.Table.from_arrays(arrays, schema=SCHEMAS[self.table])


def _build(table: TableName, rows: Sequence[Any]) -> pa.Table:
    builder = TableBuilder(table)
    builder.append(rows)
    return builder.to_table()


def link_rows(versions: Sequence[VersionRecord]) -> list[tuple[VersionRecord, Any]]:
    """The rows of the links table for `versions`: (version, link), in page order."""
    return [(version, link) for version in versions for link in version.page.links]


def clinical_trial_rows(versions: Sequence[VersionRecord]) -> list[tuple[VersionRecord, Any]]:
    """The rows of the clinical_trials table for `versions`: (version, trial), in page order."""
    return [(version, trial) for version in versions for trial in version.page.clinical_trials]


def runs_table(records: Sequence[RunRecord]) -> pa.Table:
    """The runs table of `records`."""
    return _build("runs", records)


def observations_table(observations: Sequence[Observation]) -> pa.Table:
    """The observations table of `observations`."""
    return _build("observations", observations)


def topics_table(versions: Sequence[VersionRecord]) -> pa.Table:
    """One topics row per version: key, run_id, observed_at, then the page's own fields."""
    return _build("topics", versions)


def links_table(versions: Sequence[VersionRecord]) -> pa.Table:
    """One links row per link per version, in page order."""
    return _build("links", link_rows(versions))


def clinical_trials_table(versions: Sequence[VersionRecord]) -> pa.Table:
    """One clinical_trials row per trial per version, in page order."""
    return _build("clinical_trials", clinical_trial_rows(versions))


def journal_articles_table(articles: Sequence[JournalArticleRecord]) -> pa.Table:
    """The journal_articles table of `articles`."""
    return _build("journal_articles", articles)


def empty_table(table: TableName) -> pa.Table:
    """A table with `table`'s schema and no rows."""
    return SCHEMAS[table].empty_table()
