"""One statement where the ORM needs two or more: UPDATE ... RETURNING, inserts and an upsert without a transaction.

The ORM's `update()` answers a row count, and `bulk_create` wraps even one row in a
transaction (BEGIN and COMMIT around a single INSERT). On the sale path every statement
is a round trip, so these build the ORM's own SQL and add what it cannot say. Both
PostgreSQL and SQLite (3.35+) accept RETURNING; anything else takes the long way.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, models, transaction
from django.db import connection as db
from django.db.models import sql

from config.database import planned_cursor

from .prepared import convert_rows

log = logging.getLogger(__name__)


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return f'"{model._meta.db_table}"."{field.column}"'


def update_returning(
    queryset: models.QuerySet,
    changes: Mapping[str, Any],
    returning: Sequence[str],
    extra: Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[tuple]:
    """`queryset.update(**changes)`, answering the updated rows' `returning` fields (the
    model's own columns) as tuples. The UPDATE takes the rows' locks as update() does.
    `extra` are (SQL, params) expressions over the updated row (e.g. an EXISTS), answered
    as they come from the database after the fields; only where RETURNING is spoken."""
    model = queryset.model
    if not db.features.can_return_rows_from_bulk_insert:
        if extra:
            raise NotImplementedError("extra RETURNING expressions need a database that speaks RETURNING")
        with transaction.atomic():
            pks = list(queryset.select_for_update().values_list("pk", flat=True))
            model._default_manager.filter(pk__in=pks).update(**changes)
            return list(model._default_manager.filter(pk__in=pks).values_list(*returning))
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(changes)
    compiler = query.get_compiler(db.alias)
    statement, params = compiler.as_sql()
    columns = [_column(model, name) for name in returning] + [sql_ for sql_, _ in extra]
    params = (*params, *(p for _, more in extra for p in more))
    with db.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {', '.join(columns)}", params)
        rows = cursor.fetchall()
    # The values as the ORM would give them (a JSON field's text parsed, and so on).
    fields = [model._meta.pk if name == "pk" else model._meta.get_field(name) for name in returning]
    converters = compiler.get_converters([field.get_col(model._meta.db_table) for field in fields])
    return [tuple(row) for row in compiler.apply_converters(rows, converters)] if converters else rows


def update_returning_instance(queryset: models.QuerySet, changes: Mapping[str, Any]) -> models.Model | None:
    """`queryset.update(**changes)` on (at most) one row, answering that row as a model instance."""
    model = queryset.model
    names = [f.attname for f in model._meta.concrete_fields]
    rows = update_returning(queryset, changes, [f.name for f in model._meta.concrete_fields])
    if not rows:
        return None
    return model.from_db(db.alias, names, rows[0])


INSERT_ROWS_AT_MOST = 8  # rows insert_rows writes itself; a sale writes one to three of a kind


def insert_rows(objs: Sequence[models.Model], *, batch_size: int | None = None) -> None:
    """`bulk_create(objs)` of new rows of one model on PostgreSQL: one INSERT ... RETURNING
    their primary keys, its SQL written once per model and number of rows and run as a
    prepared statement (planned_cursor). Each object gets its primary key and is marked saved,
    as bulk_create does; no signals are sent (bulk_create sends none either). Elsewhere it is
    bulk_create. On the sale path the ORM compiling its INSERTs cost more than PostgreSQL
    writing them (bench/README.md, issue 14). More than a few rows at once (a bulk action) are
    bulk_create's: its batches keep under the parameters a statement may carry, and a
    statement per count would crowd the session's prepared ones (`batch_size` is theirs)."""
    if not objs:
        return
    model = type(objs[0])
    if db.vendor != "postgresql" or len(objs) > INSERT_ROWS_AT_MOST:
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return
    with planned_cursor(db) as cursor:
        cursor.execute(insert_statement(model, len(objs)), insert_values(objs))
        rows = cursor.fetchall()
    inserted(objs, [pk for (pk,) in rows])


def insert_values(objs: Sequence[models.Model]) -> list:
    """The parameters of `insert_statement(model, len(objs))` for these new rows of one model
    (PostgreSQL), for a caller that sends the INSERT inside a statement of its own (a CTE)."""
    model = type(objs[0])
    fields = _insert_fields(model)
    values = []
    for obj in objs:
        if type(obj) is not model or not obj._state.adding:
            raise ValueError(f"insert_rows takes new {model.__name__} rows only, not {obj!r}")
        obj._prepare_related_fields_for_save(operation_name="insert_rows")
        values.extend(f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields)
    return values


def inserted(objs: Sequence[models.Model], pks: Sequence[Any]) -> None:
    """Mark new rows written, with their primary keys, as bulk_create does."""
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = db.alias


def insert_with_children(parent: models.Model, children: Sequence[models.Model], *, fk: str) -> None:
    """A new row and its new child rows, which point at it through their ForeignKey `fk`, in one
    statement on PostgreSQL: the parent's INSERT is a data-modifying CTE, and each child row
    reads the parent's key from it (an order and its lines: the order's key is the lines').
    Every object gets its primary key, and each child its parent, as insert_rows gives them.
    The children come without a parent set. Elsewhere, or with more children than insert_rows
    writes itself, the parent is saved and the children inserted after it."""
    if db.vendor != "postgresql" or not children or len(children) > INSERT_ROWS_AT_MOST:
        parent.save(force_insert=True)
        for child in children:
            setattr(child, fk, parent)
        insert_rows(children)
        return
    child_model = type(children[0])
    statement = _insert_with_children_statement(type(parent), child_model, fk, len(children))
    fields = _insert_fields(child_model)
    skip = next(n for n, f in enumerate(fields) if f.name == fk)
    values = insert_values(children)
    child_values = [v for n, v in enumerate(values) if n % len(fields) != skip]
    with planned_cursor(db) as cursor:
        cursor.execute(statement, [*insert_values([parent]), *child_values])
        rows = cursor.fetchall()
    inserted([parent], [rows[0][0]])
    for child in children:
        setattr(child, fk, parent)
    inserted(children, [pk for _, pk in rows])


@functools.cache
def _insert_with_children_statement(parent_model, child_model, fk: str, rows: int) -> str:
    fields = _insert_fields(child_model)
    key = f'(SELECT "{parent_model._meta.pk.column}" FROM "parent_row")'
    row = f"({', '.join(key if f.name == fk else '%s' for f in fields)})"
    columns = ", ".join(f'"{f.column}"' for f in fields)
    return (
        f'WITH "parent_row" AS ({insert_statement(parent_model, 1)})'
        f' INSERT INTO "{child_model._meta.db_table}" ({columns}) VALUES {", ".join([row] * rows)}'
        f' RETURNING "{child_model._meta.get_field(fk).column}", "{child_model._meta.pk.column}"'
    )


def update_by_pk_statement(model: type[models.Model], pk: Any, changes: Mapping[str, Any]) -> tuple[str, list]:
    """`UPDATE ... SET ... WHERE pk = %s` of plain values (no expressions) and its parameters,
    for a caller that sends it inside a statement of its own (a CTE)."""
    fields = [model._meta.get_field(name) for name in changes]
    sets = ", ".join(f'"{f.column}" = %s' for f in fields)
    params = [f.get_db_prep_save(value, db) for f, value in zip(fields, changes.values(), strict=True)]
    statement = f'UPDATE "{model._meta.db_table}" SET {sets} WHERE "{model._meta.pk.column}" = %s'
    return statement, [*params, model._meta.pk.get_db_prep_save(pk, db)]


@functools.cache
def _insert_fields(model: type[models.Model]) -> list:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    if any(f.db_default is not models.NOT_PROVIDED or f.generated for f in fields):
        raise TypeError(f"{model.__name__} has database defaults or generated fields: use bulk_create")
    return fields


@functools.cache
def insert_statement(model: type[models.Model], rows: int) -> str:
    """`INSERT INTO ... VALUES (...) RETURNING pk` of this many new rows (PostgreSQL), written once."""
    columns = ", ".join(f'"{f.column}"' for f in _insert_fields(model))
    row = f"({', '.join(['%s'] * len(_insert_fields(model)))})"
    return (
        f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES {", ".join([row] * rows)}'
        f' RETURNING "{model._meta.pk.column}"'
    )


def upsert_one(
    obj: models.Model, *, unique_fields: Sequence[str], update_fields: Sequence[str], defer: bool = False
) -> None:
    """INSERT the row or, when its unique fields exist, UPDATE `update_fields` from it: one
    statement (bulk_create's upsert, without its transaction around the one row), its SQL
    written once per model and fields and run as a prepared statement.

    `defer`: inside `upserts_deferred()` (a converge), the row waits for the block's last
    statement to carry it (`deferred_upserts`), else is written as the block ends; anywhere
    else it is written now. For a row that records what a channel said (nothing in the block
    reads it back): it then costs no statement of its own."""
    model = type(obj)
    if db.vendor != "postgresql":
        model._default_manager.bulk_create(
            [obj], update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields
        )
        return
    statement = _upsert_statement(model, tuple(unique_fields), tuple(update_fields))
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in _insert_fields(model)]
    pending = _DEFERRED.get()
    if defer and pending is not None:
        # The same row asked twice (a revise then an end in one converge): its last word counts,
        # and one statement may not upsert a row twice.
        key = (statement, *(getattr(obj, model._meta.get_field(name).attname) for name in unique_fields))
        pending.pop(key, None)
        pending[key] = (statement, values)
        return
    with planned_cursor(db) as cursor:
        cursor.execute(statement, values)


# Upserts waiting for a statement to carry them: (statement, key values) -> (statement, values).
_DEFERRED: ContextVar[dict | None] = ContextVar("deferred_upserts", default=None)


@contextmanager
def upserts_deferred() -> Iterator[None]:
    """A block (one converge) whose `upsert_one(..., defer=True)` rows ride with its final
    statement: see `deferred_upserts`. What no statement carried is written as the block ends,
    in the order asked, also when it raises (then a failed write is logged, not raised over the
    block's own error)."""
    pending: dict = {}
    token = _DEFERRED.set(pending)
    try:
        yield
    except BaseException:
        _DEFERRED.reset(token)
        try:
            _write_deferred(pending)
        except DatabaseError:
            log.exception("could not write %d deferred upsert(s) after a failed converge", len(pending))
        raise
    _DEFERRED.reset(token)
    _write_deferred(pending)


def upserts_flush() -> None:
    """Write the block's deferred upserts now: before another write of the same rows (an
    UPDATE of them must not be overtaken by an upsert written later)."""
    pending = _DEFERRED.get()
    if pending:
        _write_deferred(pending)


def _write_deferred(pending: dict) -> None:
    while pending:
        key = next(iter(pending))
        statement, values = pending[key]
        with planned_cursor(db) as cursor:
            cursor.execute(statement, values)
        del pending[key]


def deferred_upserts() -> tuple[tuple[str, ...], list]:
    """The block's deferred upserts, for a statement of the caller's to carry as data-modifying
    CTEs (`with_ctes`): their statements and their parameters, in order. Once that statement
    ran, the caller calls `deferred_upserts_carried()`."""
    pending = _DEFERRED.get()
    if not pending:
        return (), []
    return tuple(statement for statement, _ in pending.values()), [v for _, values in pending.values() for v in values]


def deferred_upserts_carried() -> None:
    pending = _DEFERRED.get()
    if pending:
        pending.clear()


@dataclass
class Ride:
    """A write offered to the next transaction that takes rides (`ride_with_next_commit`)."""

    sql: str
    params: list
    carried: bool = False  # true once a transaction that carried it has committed


# The rides offered to the next statement that takes them.
_RIDES: ContextVar[list[Ride] | None] = ContextVar("rides", default=None)


@contextmanager
def ride_with_next_commit(sql_: str, params: Sequence[Any]) -> Iterator[Ride]:
    """Offer a write (`sql_` with positional parameters) to the block's first statement that
    takes rides (`rides_offered`): it carries the write as a data-modifying CTE and the write
    commits with that statement's transaction, instead of as a statement and a commit of its
    own. After the block, `ride.carried` says whether that happened; when it did not (no such
    statement ran, or its transaction rolled back) the caller writes it itself.

    Offered only outside a transaction: then the carrying transaction is the outermost one,
    and its commit is the write's (inside one, e.g. a test's, the caller writes it, as ever)."""
    ride = Ride(sql_, list(params))
    if db.vendor != "postgresql" or db.in_atomic_block:
        yield ride
        return
    token = _RIDES.set([ride])
    try:
        yield ride
    finally:
        _RIDES.reset(token)


def rides_offered() -> tuple[list[tuple[str, str]], list]:
    """The rides offered to the caller's statement, as (name, sql) CTEs for `with_ctes` and
    their parameters (the CTEs come first in the statement, so do their parameters). Once the
    statement ran, the caller calls `rides_taken()`."""
    rides = _RIDES.get()
    if not rides:
        return [], []
    return [(f"ride_{n}", ride.sql) for n, ride in enumerate(rides, 1)], [p for ride in rides for p in ride.params]


def rides_taken() -> None:
    """The caller's statement carried the offered rides: they are not offered again, and each
    counts as carried when the transaction around that statement commits (at once in
    autocommit; never when it rolls back, Django then drops the callback)."""
    rides = _RIDES.get()
    if not rides:
        return
    taken = list(rides)
    rides.clear()

    def carried() -> None:
        for ride in taken:
            ride.carried = True

    transaction.on_commit(carried)


def positional(named_sql: str) -> tuple[str, tuple[str, ...]]:
    """`%(name)s` placeholders as `%s` and the names in their order: for a statement written
    with names that has to carry CTEs with positional parameters (psycopg takes one style)."""
    names = tuple(_NAMED.findall(named_sql))
    return _NAMED.sub("%s", named_sql), names


_NAMED = re.compile(r"%\((\w+)\)s")


def with_ctes(ctes: Sequence[tuple[str, str]], statement: str) -> str:
    """`WITH "name" AS (sql), ... statement`. PostgreSQL runs a data-modifying CTE once and to
    completion whether or not the statement reads it, in the statement's snapshot."""
    if not ctes:
        return statement
    return "WITH " + ", ".join(f'"{name}" AS ({sql_})' for name, sql_ in ctes) + f" {statement}"


@functools.cache
def _upsert_statement(model: type[models.Model], unique_fields: tuple, update_fields: tuple) -> str:
    fields = _insert_fields(model)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    key = ", ".join(f'"{model._meta.get_field(name).column}"' for name in unique_fields)
    updates = ", ".join(
        f'"{model._meta.get_field(name).column}" = EXCLUDED."{model._meta.get_field(name).column}"'
        for name in update_fields
    )
    return (
        f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({", ".join(["%s"] * len(fields))})'
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _columns_of(model: type[models.Model]) -> list:
    """The model's concrete fields, each with its own table (an inherited field keeps its parent's)."""
    return list(model._meta.concrete_fields)


def update_returning_joined(
    queryset: models.QuerySet, changes: Mapping[str, Any], connection_model: type[models.Model]
) -> tuple[models.Model, models.Model | None] | None:
    """`update_returning_instance` for a row with a `connection` foreign key, answering with it
    that connection as `connection_model` (a channel's own connection model, whose rows
    inherit from the one the key points at) with its `account` loaded, in the same statement:
    the UPDATE ... RETURNING inside a CTE, joined to the connection's tables. Answers None
    when no row was updated, and (row, None) when the row's connection is not of that model.
    PostgreSQL only (a data-modifying CTE)."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(changes)
    statement, params = query.get_compiler(db.alias).as_sql()
    return returning_joined(queryset.model, statement, params, connection_model)


# PostgreSQL reads synchronous_commit when a transaction commits, and documents turning it off
# for one transaction whose loss in a server crash is acceptable: the commit answers without
# waiting for its WAL to reach the disk (it is written within wal_writer_delay; a crash can
# lose it, never corrupt anything). set_config(..., true) sets it for the statement's own
# transaction only; the CROSS JOIN of its one row has it evaluated before that commit.
_UNFLUSHED = ", unflushed AS (SELECT set_config('synchronous_commit', 'off', true))"


def returning_joined(
    model: type[models.Model],
    statement: str,
    params: Sequence[Any],
    connection_model: type[models.Model],
    *,
    unflushed: bool = False,
) -> tuple[models.Model, models.Model | None] | None:
    """`update_returning_joined` for an UPDATE of `model` already written as SQL (a prepared
    one, prepared.py): the same CTE, joins and answer.

    `unflushed`: the UPDATE is a write a server crash may lose (a converge's lease), so its
    commit does not wait for the disk. Only outside a transaction: inside one it would apply
    to everything that transaction wrote, so it is ignored there."""
    joined = _joined(model, connection_model)
    if unflushed and not db.in_atomic_block:
        sql = f"WITH claimed AS ({statement} RETURNING {joined.returning}){_UNFLUSHED} {joined.select_unflushed}"
    else:
        sql = f"WITH claimed AS ({statement} RETURNING {joined.returning}) {joined.select}"
    with planned_cursor(db) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    # The values as the ORM would give them (JSON parsed, secrets decrypted, and so on).
    (row,) = convert_rows(rows, joined.converters, db) if joined.converters else rows
    row = tuple(row)
    n, m = len(joined.own), len(joined.linked)
    instance = model.from_db(db.alias, joined.own, row[:n])
    if row[n + joined.ptr_index] is None:
        return instance, None
    connection = connection_model.from_db(db.alias, joined.linked, row[n : n + m])
    connection.account = joined.account_model.from_db(db.alias, joined.accounts, row[n + m :])
    return instance, connection


@dataclass(frozen=True)
class _Joined:
    returning: str
    select: str
    select_unflushed: str  # the same, joined to the one row of _UNFLUSHED
    own: list[str]  # attnames, in the order selected
    linked: list[str]
    accounts: list[str]
    ptr_index: int  # where the child's link to its parent row is among `linked`
    account_model: type[models.Model]
    converters: dict


@functools.cache
def _joined(model: type[models.Model], connection_model: type[models.Model]) -> _Joined:
    """The RETURNING list, the SELECT with its joins and the ORM's converters for a row of
    `model` with its `connection_model` and account: written once per pair of models."""
    own = _columns_of(model)
    parent = model._meta.get_field("connection").related_model
    account_model = parent._meta.get_field("account").related_model
    linked = _columns_of(connection_model)
    accounts = _columns_of(account_model)
    parent_table = parent._meta.db_table
    child_table = connection_model._meta.db_table
    ptr = connection_model._meta.pk  # the child's link to its parent row
    account_table = account_model._meta.db_table
    returning = ", ".join(f'"{model._meta.db_table}"."{f.column}"' for f in own)
    columns = ", ".join(
        [f'claimed."{f.column}"' for f in own]
        + [f'"{f.model._meta.db_table}"."{f.column}"' for f in linked]
        + [f'"{account_table}"."{f.column}"' for f in accounts]
    )
    connection_column = model._meta.get_field("connection").column
    joins = (
        f' LEFT JOIN "{parent_table}" ON "{parent_table}"."{parent._meta.pk.column}" = claimed."{connection_column}"'
        f' LEFT JOIN "{child_table}" ON "{child_table}"."{ptr.column}" = "{parent_table}"."{parent._meta.pk.column}"'
        f' LEFT JOIN "{account_table}" ON "{account_table}"."{account_model._meta.pk.column}"'
        f' = "{parent_table}"."{parent._meta.get_field("account").column}"'
    )
    expressions = (
        [f.get_col(model._meta.db_table) for f in own]
        + [f.get_col(f.model._meta.db_table) for f in linked]
        + [f.get_col(account_table) for f in accounts]
    )
    compiler = model._default_manager.all().query.get_compiler(db.alias)
    linked_names = [f.attname for f in linked]
    return _Joined(
        returning=returning,
        select=f"SELECT {columns} FROM claimed{joins}",
        select_unflushed=f"SELECT {columns} FROM claimed CROSS JOIN unflushed{joins}",
        own=[f.attname for f in own],
        linked=linked_names,
        accounts=[f.attname for f in accounts],
        ptr_index=linked_names.index(ptr.attname),
        account_model=account_model,
        converters=compiler.get_converters(expressions),
    )
