"""One statement where the ORM needs two or more: UPDATE ... RETURNING, inserts and an upsert without a transaction.

The ORM's `update()` answers a row count, and `bulk_create` wraps even one row in a
transaction (BEGIN and COMMIT around a single INSERT). On the sale path every statement
is a round trip, so these build the ORM's own SQL and add what it cannot say. Both
PostgreSQL and SQLite (3.35+) accept RETURNING; anything else takes the long way.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection as db
from django.db import models, transaction
from django.db.models import sql

from config.database import planned_cursor

from .prepared import convert_rows


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


def upsert_one(obj: models.Model, *, unique_fields: Sequence[str], update_fields: Sequence[str]) -> None:
    """INSERT the row or, when its unique fields exist, UPDATE `update_fields` from it: one
    statement (bulk_create's upsert, without its transaction around the one row), its SQL
    written once per model and fields and run as a prepared statement."""
    model = type(obj)
    if db.vendor != "postgresql":
        model._default_manager.bulk_create(
            [obj], update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields
        )
        return
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in _insert_fields(model)]
    with planned_cursor(db) as cursor:
        cursor.execute(_upsert_statement(model, tuple(unique_fields), tuple(update_fields)), values)


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


def returning_joined(
    model: type[models.Model], statement: str, params: Sequence[Any], connection_model: type[models.Model]
) -> tuple[models.Model, models.Model | None] | None:
    """`update_returning_joined` for an UPDATE of `model` already written as SQL (a prepared
    one, prepared.py): the same CTE, joins and answer."""
    joined = _joined(model, connection_model)
    with planned_cursor(db) as cursor:
        cursor.execute(f"WITH claimed AS ({statement} RETURNING {joined.returning}) {joined.select}", params)
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
    select = (
        f"SELECT {columns} FROM claimed"
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
        select=select,
        own=[f.attname for f in own],
        linked=linked_names,
        accounts=[f.attname for f in accounts],
        ptr_index=linked_names.index(ptr.attname),
        account_model=account_model,
        converters=compiler.get_converters(expressions),
    )
