"""The archive's tables: explicit Arrow schemas built from the item and record classes.

Column types follow the Python annotations, never the data: str -> string, int -> int64,
bool -> bool, date -> date32, datetime -> timestamp[us, UTC], a `Literal` -> string,
`X | None` -> a nullable X, list[X] -> list<element: X>, a list of item parts (related
topics) -> list<struct<...>>. A nested part held directly (primary_institute, image) is
flattened to `<field>_<subfield>` columns. An all-None or empty batch therefore gets the
same types as any other. Every schema carries `SCHEMA_VERSION` in its metadata, which
Parquet keeps in each file.

Schema evolution: a schema version may only add tables and add columns, never remove,
rename or retype one (`TABLE_ADDED_IN`, `COLUMN_ADDED_IN` record what each version
added). A column added after version 1 is nullable, whatever its annotation. Files of
every version up to `SCHEMA_VERSION` stay readable, as they are: a file of version `v`
has exactly the columns of `version_schema(table, v)`, and `promote` turns its rows into
rows of the current schema, the columns added since being null; a run committed by an
older version lists no file of a table added since, and has no rows in it. So an archive
keeps working across upgrades, old files are never rewritten, and compaction merges
files of any version into files of the current one.

Tables are built column-wise: one Python list per column, then one Arrow array per list.
A `TableBuilder` checks each row against the annotations as it is added (so a bad item
fails where it is added) and converts the whole batch to Arrow once, at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, TypeGuard, get_args

import pyarrow as pa

from crawler.parsing.items import NOT_ARCHIVED, ClinicalTrial, HealthTopicPage, TopicLink
from crawler.parsing.xml_dump import DumpTopic
from pipelines.core.errors import InvalidRecordError
from pipelines.core.records import (
    JournalArticleRecord,
    Observation,
    RunRecord,
    VersionRecord,
    XmlRecord,
)

SCHEMA_VERSION = 2
"""Bumped whenever a table or a column is added (see the module docstring); readers refuse
files from a newer version and read files of every older one."""
SCHEMA_VERSION_KEY = b"medlineplus_archive.schema_version"
"""Parquet file metadata key holding the schema version (ASCII digits)."""
TABLE_KEY = b"medlineplus_archive.table"
"""Parquet file metadata key holding the table name."""

TableName = Literal[
    "runs",
    "observations",
    "topics",
    "links",
    "clinical_trials",
    "journal_articles",
    "xml_records",
]
TABLES: tuple[TableName, ...] = get_args(TableName)

TABLE_ADDED_IN: Mapping[TableName, int] = types.MappingProxyType({"xml_records": 2})
"""The schema version that added a table; the others are in every version."""
COLUMN_ADDED_IN: Mapping[tuple[TableName, str], int] = types.MappingProxyType(
    {("runs", "notes"): 2, ("runs", "hidden_changes"): 2}
)
"""The schema version that added a column to a table that already existed."""

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
    batch_check: Callable[[list[Any]], bool] | None
    """True when every value of a batch fits, None included where the column allows it:
    one pass in C over the batch. None for types checked value by value (datetimes must
    be aware, parts hold several fields); a False batch is checked value by value, to
    name what does not fit."""


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
        allowed = frozenset(typing.get_args(inner))

        def check_literal(value: Any) -> None:
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {sorted(allowed)}")

        return check_literal
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


def value_checker(hint: Any) -> Callable[[Any], None]:
    """A function checking an item's value of a field annotated `hint` exactly as the
    table builders do (converted to the column's value, then `_checker`), None only
    where the annotation allows it: what passes can be stored. Raises TypeError,
    ValueError or AttributeError (a part that is not its dataclass) saying what does
    not fit."""
    convert, check = _converter(hint), _checker(hint)
    _, nullable = _unwrap_optional(hint)

    def check_value(value: Any) -> None:
        converted = convert(value)
        if converted is None:
            if not nullable:
                raise ValueError("missing")
            return
        check(converted)

    return check_value


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


def _batch_checker(hint: Any, nullable: bool) -> Callable[[list[Any]], bool] | None:
    """A `_Column.batch_check` for a field annotated `hint`; None where values are checked
    one by one. Types are compared exactly (a bool is not an int, a datetime not a date),
    as `_checker` does: a subclass only takes the slower path."""
    inner, _ = _unwrap_optional(hint)
    none: frozenset[type] = frozenset({type(None)}) if nullable else frozenset()
    origin = typing.get_origin(inner)
    if origin is Literal:
        allowed = frozenset(typing.get_args(inner)) | ({None} if nullable else set())
        return allowed.issuperset
    if origin is list:
        (element_hint,) = typing.get_args(inner)
        if element_hint is not str:
            return None
        lists = none | {list}

        def check_lists(values: list[Any]) -> bool:
            return lists.issuperset(map(type, values)) and _STR.issuperset(
                map(type, itertools.chain.from_iterable(v for v in values if v is not None))
            )

        return check_lists
    if inner in (str, bool, date, float):
        kinds = none | ({float, int} if inner is float else {inner})
        return lambda values: kinds.issuperset(map(type, values))
    if inner is int:
        ints = none | {int}

        def check_ints(values: list[Any]) -> bool:
            if not ints.issuperset(map(type, values)):
                return False
            present = [value for value in values if value is not None]
            return not present or (min(present) >= -(2**63) and max(present) < 2**63)

        return check_ints
    return None


_STR = frozenset({str})


def _converter(hint: Any) -> Callable[[Any], Any]:
    """A function turning a field's Python value into what `pa.array` takes, checked."""
    inner, _ = _unwrap_optional(hint)
    origin = typing.get_origin(inner)
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


_Path = tuple[str, ...]
"""Where a column's value sits in a row: attribute names, from the row object inward; a
name starting with "?" is a nested part that may be None (its fields then read as None)."""


def _getter(path: _Path, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The function reading the value at `path` of a row, converted.

    A path of plain attributes becomes one `operator.attrgetter` (dotted names are
    followed in C): getters run once per column per row, the hot loop of writing a run.
    """
    names = [name.removeprefix("?") for name in path]
    get = operator.attrgetter(".".join(names))
    if names == list(path) and convert is _identity:
        return get
    *outer, name = names

    def value(row: Any) -> Any:
        for step in outer:
            row = getattr(row, step)
            if row is None:  # a missing part: "?" steps only, the others are never None
                return None
        return convert(getattr(row, name))

    return value


def _record_columns(cls: type, path: _Path = (), *, skip: Sequence[str] = ()) -> list[_Column]:
    """One column per field of `cls` (parts held directly flattened), found at `path`."""
    columns: list[_Column] = []
    for name, hint in _part_fields(cls):
        if name in skip:
            continue
        inner, nullable = _unwrap_optional(hint)
        if _is_part(inner):
            for column in _record_columns(inner, (*path, f"?{name}")):
                flat = column.field.with_name(f"{name}_{column.field.name}")
                columns.append(
                    _Column(
                        flat.with_nullable(flat.nullable or nullable),
                        column.value,
                        column.check,
                        column.batch_check,
                    )
                )
            continue
        data_type, nullable = arrow_type(hint)
        columns.append(
            _Column(
                pa.field(name, data_type, nullable=nullable),
                _getter((*path, name), _converter(hint)),
                _checker(hint),
                _batch_checker(hint, nullable),
            )
        )
    return columns


def _key_columns(version: _Path) -> list[_Column]:
    """The version key columns, read from the page of the `VersionRecord` at `version`."""
    by_name = {
        column.field.name: column
        for column in _record_columns(HealthTopicPage, (*version, "page"), skip=NOT_ARCHIVED)
    }
    return [by_name[name] for name in VERSION_KEY]


def _topic_columns() -> list[_Column]:
    return [
        *_key_columns(()),
        *_record_columns(VersionRecord, skip=("page",)),
        *_record_columns(
            HealthTopicPage,
            ("page",),
            skip=(*VERSION_KEY, *_PAGE_CHILD_TABLES, *NOT_ARCHIVED),
        ),
    ]


class _EntryRow(NamedTuple):
    """A row of an entry table (links, clinical_trials): one entry of one version."""

    version: VersionRecord
    entry: Any


def _entry_columns(entry: type) -> list[_Column]:
    """Columns of an `_EntryRow`: version key, run_id, the entry's fields."""
    return [
        *_key_columns(("version",)),
        *_record_columns(
            VersionRecord, ("version",), skip=("page", "observed_at", "warc_file", "warc_offset")
        ),
        *_record_columns(entry, ("entry",)),
    ]


def _xml_record_columns() -> list[_Column]:
    """The topic key, the run and dump day, then the rest of the record (fingerprint last)."""
    record = {column.field.name: column for column in _record_columns(DumpTopic, ("record",))}
    key = [record.pop(name) for name in TOPIC_KEY]
    return [*key, *_record_columns(XmlRecord, skip=("record",)), *record.values()]


def _nullable_when_added(table: TableName, columns: list[_Column]) -> list[_Column]:
    """`columns`, those added after version 1 made nullable (older files lack them)."""
    names = {column.field.name for column in columns}
    for added_table, name in COLUMN_ADDED_IN:
        if added_table == table and name not in names:
            raise TypeError(f"COLUMN_ADDED_IN names {table}.{name}, which is no column")
    return [
        dataclasses.replace(column, field=column.field.with_nullable(True))
        if (table, column.field.name) in COLUMN_ADDED_IN
        else column
        for column in columns
    ]


_ANNOTATED_COLUMNS: dict[TableName, list[_Column]] = {
    "runs": _record_columns(RunRecord),
    "observations": _record_columns(Observation),
    "topics": _topic_columns(),
    "links": _entry_columns(TopicLink),
    "clinical_trials": _entry_columns(ClinicalTrial),
    "journal_articles": _record_columns(JournalArticleRecord),
    "xml_records": _xml_record_columns(),
}
_COLUMNS: dict[TableName, list[_Column]] = {
    table: _nullable_when_added(table, columns) for table, columns in _ANNOTATED_COLUMNS.items()
}


def _metadata(table: TableName, version: int) -> dict[bytes, bytes]:
    return {SCHEMA_VERSION_KEY: str(version).encode("ascii"), TABLE_KEY: table.encode()}


def _schema(table: TableName) -> pa.Schema:
    fields = [column.field for column in _COLUMNS[table]]
    return pa.schema(fields, metadata=_metadata(table, SCHEMA_VERSION))


SCHEMAS: Mapping[TableName, pa.Schema] = types.MappingProxyType(
    {table: _schema(table) for table in TABLES}
)
"""The schema of every table, with the schema version and table name in its metadata."""


def is_table_name(name: str) -> TypeGuard[TableName]:
    """True when `name` is one of the archive's tables."""
    return name in TABLES


def version_tables(version: int) -> tuple[TableName, ...]:
    """The tables of schema version `version`: those a run of that version commits."""
    return tuple(table for table in TABLES if TABLE_ADDED_IN.get(table, 1) <= version)


def version_schema(table: TableName, version: int) -> pa.Schema:
    """The schema of `table`'s files written by schema version `version` (at most
    `SCHEMA_VERSION`); KeyError when that version has no such table."""
    if table not in version_tables(version) or version > SCHEMA_VERSION:
        raise KeyError(f"schema version {version} has no table {table}")
    current = SCHEMAS[table]
    fields = [
        current.field(name)
        for name in current.names
        if COLUMN_ADDED_IN.get((table, name), 1) <= version
    ]
    return pa.schema(fields, metadata=_metadata(table, version))


def promote(table: TableName, rows: pa.Table) -> pa.Table:
    """Rows read whole from a file of `table`, of any schema version up to the current one,
    with the current schema: the columns added since the file's version are null.

    ValueError when the file's version is unknown or newer, or its columns are not those
    of its version."""
    version = file_schema_version(rows.schema.metadata)
    if version is None or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema version {version}; this code reads 1 to {SCHEMA_VERSION}")
    try:
        expected = version_schema(table, version)
    except KeyError as error:
        raise ValueError(f"schema version {version} has no {table} table") from error
    if rows.schema.names != expected.names:
        raise ValueError(f"its columns are not those of the {table} table of version {version}")
    current = SCHEMAS[table]
    columns = [
        rows.column(field.name) if field.name in expected.names else pa.nulls(len(rows), field.type)
        for field in current
    ]
    return pa.Table.from_arrays(columns, names=current.names).cast(current)


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
            try:
                values = list(map(column.value, rows))
            except (ValueError, TypeError, AttributeError):
                values = self._checked(column, rows)  # raises, naming the column
            if column.batch_check is None or not column.batch_check(values):
                values = self._checked(column, rows)
            prepared.append(values)
        return prepared

    def _checked(self, column: _Column, rows: Sequence[Any]) -> list[Any]:
        """`column`'s values of `rows`, checked one by one."""
        nullable = column.field.nullable
        values = []
        for position, row in enumerate(rows):
            try:
                value = column.value(row)
                if value is None:
                    if not nullable:
                        raise ValueError(f"missing value in row {position}")
                else:
                    column.check(value)
            except (ValueError, TypeError, AttributeError) as error:
                raise InvalidRecordError(self.table, column.field.name, str(error)) from error
            values.append(value)
        return values

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


def link_rows(versions: Sequence[VersionRecord]) -> list[_EntryRow]:
    """The rows of the links table for `versions`, in page order."""
    return [_EntryRow(version, link) for version in versions for link in version.page.links]


def clinical_trial_rows(versions: Sequence[VersionRecord]) -> list[_EntryRow]:
    """The rows of the clinical_trials table for `versions`, in page order."""
    return [
        _EntryRow(version, trial) for version in versions for trial in version.page.clinical_trials
    ]


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
