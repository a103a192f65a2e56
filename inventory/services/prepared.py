"""Reads of a fixed shape on the sale path, their SQL written by the ORM once per process.

Building a queryset and compiling it to SQL costs more CPU than PostgreSQL takes to answer a
primary-key read: on a sale the ORM writing SQL was about a sixth of the worker's CPU
(bench/README.md, issue 14). A `Prepared` read is described as a queryset, as anywhere else,
and compiled the first time it runs: the builder is called with markers in place of the
values (one distinct marker per value, of the value's type), the compiled parameters are
searched for the markers, and each later call puts its own values where the markers were.
The rows come back through the ORM's own conversions (JSON parsed, secrets decrypted, the
`select_related` objects and annotations set), exactly as iterating the queryset would.

What may be a value: an int or a str compared with `=` (a lookup that transforms its
value, such as `icontains`, would not carry the marker through, and the first compile
says so). Everything else, the model, the related objects loaded, the channel, is the
read's shape: part of the cache key, fixed per compiled statement. A value of another
type, or None (which the ORM would turn into IS NULL), is refused.

`planned_cursor` (config/database.py) runs such SQL, and the other statements of a fixed shape a sale runs every
time, as server-side prepared statements: PostgreSQL parses and plans each once per session
and then only binds and executes it (`DATABASE_PREPARED_STATEMENTS`, config/settings.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Any

from django.db import connections
from django.db.models import sql as orm_sql
from django.db.models.query import FlatValuesListIterable, ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError

from config.database import planned_cursor

# In range of a 32-bit integer column (Django 5 answers an out-of-range integer lookup with
# no SQL at all) and never an id: primary keys start at 1.
_INT_MARKERS = -1_000_000_001
_STR_MARKER = "\x1fprepared-value-{}\x1f"
_DATETIME_MARKERS = datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)
_KINDS = (int, str, datetime)


def _marker(number: int, kind: type):
    if kind is int:
        return _INT_MARKERS - number
    if kind is str:
        return _STR_MARKER.format(number)
    return _DATETIME_MARKERS + timedelta(microseconds=number + 1)


def _of_kind(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, kind)


def value_kinds(values: dict[str, Any]) -> tuple[tuple[str, type], ...] | None:
    """Each value's kind as a prepared value, by name, or None when one of them cannot be one
    (None, a bool, a naive datetime, a JSON list...): the caller then runs its queryset."""
    kinds = []
    for name, value in sorted(values.items()):
        kind = next((kind for kind in _KINDS if _of_kind(value, kind)), None)
        if kind is None:
            return None
        kinds.append((name, kind))
    return tuple(kinds)


def _slots(
    markers: dict[str, Any], params: tuple, alias: str
) -> tuple[tuple[str, tuple[tuple[int, Callable | None], ...]], ...]:
    """Where each marker is among the compiled parameters, with what the ORM made of it there,
    if anything: the type it wrapped it in (an integer field's value to write comes as
    psycopg's Int2/Int4/Int8), or the database's own adaptation of a datetime (SQLite, which
    has no datetime type, is handed it as text: each value is adapted the same way)."""
    ops = connections[alias].ops
    slots = []
    for name, marker in markers.items():
        positions = tuple(
            (i, None if type(param) is type(marker) else type(param))
            for i, param in enumerate(params)
            if isinstance(param, type(marker)) and param == marker
        )
        if not positions and isinstance(marker, datetime):
            adapted = ops.adapt_datetimefield_value(marker)
            if not isinstance(adapted, datetime):
                positions = tuple(
                    (i, ops.adapt_datetimefield_value)
                    for i, param in enumerate(params)
                    if type(param) is type(adapted) and param == adapted
                )
        if not positions:
            raise TypeError(f"{name} does not reach the SQL as given (a transforming lookup?): cannot prepare")
        slots.append((name, positions))
    return tuple(slots)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple  # each value's positions among the params, and what wraps or adapts it there
    alias: str
    compiler: Any = None  # a read's compiler: its select list and klass_info
    converters: dict | None = None
    kind: str = ""  # a read's rows: "model", "tuples", "flat"
    for_update: bool = False


class _Marked:
    """What a read and an update share: values by marker, one compiled statement per shape."""

    def __init__(self, build: Callable, **values: type) -> None:
        for name, kind in values.items():
            if kind not in _KINDS:
                raise TypeError(f"{name}: a prepared value is an int, a str or an aware datetime, not {kind!r}")
        self._build = build
        self._values = values
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = Lock()

    def _bind(self, arguments: dict) -> tuple[_Compiled, list]:
        missing = set(self._values) - set(arguments)
        if missing:
            raise TypeError(f"missing prepared value(s): {', '.join(sorted(missing))}")
        for name, kind in self._values.items():
            if not _of_kind(arguments[name], kind):
                value = arguments[name]
                raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__} ({value!r})")
        shape = {name: value for name, value in arguments.items() if name not in self._values}
        key = tuple(sorted((name, _shape_key(value)) for name, value in shape.items()))
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    markers = {name: _marker(n, kind) for n, (name, kind) in enumerate(self._values.items())}
                    compiled = self._compiled[key] = self._compile(shape, markers)
        params = list(compiled.params)
        for name, positions in compiled.slots:
            for position, wrapped in positions:
                params[position] = arguments[name] if wrapped is None else wrapped(arguments[name])
        return compiled, params

    def _compile(self, shape: dict, markers: dict) -> _Compiled:
        raise NotImplementedError


class Prepared(_Marked):
    """`Prepared(build, item_id=int)`, then `read.first(item_id=5)` or `read.all(...)`.

    `build(**shape, **values)` answers the queryset. `values` names the arguments that
    change per call, with their types; any other keyword given to `first`/`all` is shape.
    """

    def all(self, **arguments: Any) -> list:
        compiled, params = self._bind(arguments)
        connection = connections[compiled.alias]
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with planned_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        compiler = compiled.compiler
        if compiled.converters:
            rows = convert_rows(rows, compiled.converters, connection)
        if compiled.kind == "flat":
            return [row[0] for row in rows]
        if compiled.kind == "tuples":
            return [tuple(row) for row in rows]
        return list(_instances(compiler, rows, compiled.alias))

    def first(self, **arguments: Any):
        """The first row of a read that says its order and limit (`[:1]` after `order_by`)."""
        found = self.all(**arguments)
        return found[0] if found else None

    def _compile(self, shape: dict, markers: dict) -> _Compiled:
        queryset = self._build(**shape, **markers)
        iterable = queryset._iterable_class
        kinds = {ModelIterable: "model", ValuesListIterable: "tuples", FlatValuesListIterable: "flat"}
        if iterable not in kinds:
            raise TypeError(f"a prepared read answers instances or values_list rows, not {iterable.__name__}")
        if queryset._prefetch_related_lookups or queryset._known_related_objects:
            raise TypeError("a prepared read cannot prefetch, nor come from a related manager")
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        fields = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
        return _Compiled(
            sql=sql,
            params=tuple(params),
            slots=_slots(markers, tuple(params), queryset.db),
            alias=queryset.db,
            compiler=compiler,
            converters=compiler.get_converters(fields),
            kind=kinds[iterable],
            for_update=queryset.query.select_for_update,
        )


class PreparedUpdate(_Marked):
    """`queryset.update(**changes)` of a fixed shape, as SQL: `build(**shape, **values)`
    answers (queryset, changes), and `statement(...)` the UPDATE and its parameters, to run
    with a RETURNING clause (returning.py). A value set to None is shape, not a value."""

    def statement(self, **arguments: Any) -> tuple[str, list]:
        compiled, params = self._bind(arguments)
        return compiled.sql, params

    def run(self, **arguments: Any) -> int:
        """The UPDATE itself, as `update()` runs it: answers how many rows it changed."""
        compiled, params = self._bind(arguments)
        with planned_cursor(connections[compiled.alias]) as cursor:
            cursor.execute(compiled.sql, params)
            return cursor.rowcount

    def _compile(self, shape: dict, markers: dict) -> _Compiled:
        queryset, changes = self._build(**shape, **markers)
        query = queryset.query.chain(orm_sql.UpdateQuery)
        query.add_update_values(changes)
        sql, params = query.get_compiler(queryset.db).as_sql()
        return _Compiled(
            sql=sql, params=tuple(params), slots=_slots(markers, tuple(params), queryset.db), alias=queryset.db
        )


def update_by_pk(model, pk: int, **changes: Any) -> int:
    """`model.objects.filter(pk=pk).update(**changes)`, prepared once per model and set of
    fields when every value can be a prepared value (else the ORM's update, as it is)."""
    kinds = value_kinds(changes)
    if kinds is None or not _of_kind(pk, int):
        return model._default_manager.filter(pk=pk).update(**changes)
    return _update_by_pk(model, kinds).run(pk=pk, **changes)


@functools.cache
def _update_by_pk(model, kinds: tuple[tuple[str, type], ...]) -> PreparedUpdate:
    return PreparedUpdate(lambda pk, **changes: (model._default_manager.filter(pk=pk), changes), pk=int, **dict(kinds))


def convert_rows(rows, converters: dict, connection) -> list[list]:
    """The ORM's conversions of fetched rows (its compiler's apply_converters), with this
    thread's connection: a compiled statement is shared by every thread of the process."""
    converters = list(converters.items())
    converted = []
    for row in rows:
        row = list(row)
        for position, (functions, expression) in converters:
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        converted.append(row)
    return converted


def _shape_key(value: Any) -> Hashable:
    if isinstance(value, type):
        return (value.__module__, value.__qualname__)
    hash(value)  # a shape that is not hashable cannot key a compiled statement
    return value


def _instances(compiler, rows, alias: str):
    """Model instances from rows, as Django's ModelIterable makes them."""
    select, klass_info, annotation_col_map = compiler.select, compiler.klass_info, compiler.annotation_col_map
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    init_list = [selected[0].target.attname for selected in select[start:end]]
    populators = get_related_populators(klass_info, select, alias)
    for row in rows:
        instance = model.from_db(alias, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, instance)
        for name, position in (annotation_col_map or {}).items():
            setattr(instance, name, row[position])
        yield instance
