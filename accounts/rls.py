"""Tenant isolation in PostgreSQL too: row-level security on every business table, behind the ORM scoping.

Every table with an `account_id` column (and each channel connection's own table, through
its parent row) gets one policy, `account_isolation`:

    account_id = current_setting('app.account_id')   when the setting is set
    every row                                          when it is not (system work)

`account_scope(account_id)` sets `app.account_id` for the duration of a request (middleware
below), a task or a command working for one shop, and puts the previous value back. So a
queryset that forgot `for_user()`, a raw query or a join through another tenant's id returns
nothing of another shop while a shop's request runs, whatever the Python code does. System
work that spans shops (beat's sweepers, migrations, the key rotation) runs without the
setting.

Setting the scope is switched by DATABASE_ROW_LEVEL_SECURITY (on in production, off in
development and tests, where the connection is a superuser anyway); the policies are installed
on PostgreSQL either way. The tables get ENABLE and FORCE ROW LEVEL SECURITY, so the policy binds their owner too;
only superusers and roles with BYPASSRLS skip it. Production must therefore connect as a
role that is neither (docs/DEPLOYMENT.md: "Database roles"); the test suite connects as the
`postgres` superuser and is not affected, while tests/test_row_level_security.py switches to
a plain role to prove the policies hold. Applied after every `migrate` (post_migrate), so a
business table added later is covered the day it is created. SQLite has no row-level
security: there the scope is a no-op.

Not for use behind a transaction-pooling pgbouncer: the setting lives in the session.

In a Celery worker the session belongs to the tasks alone, one after the other, so a task
told its account (`task_scope`) sets the scope only when the session holds another one, and
leaves it set when it ends; the next task (`task_starting`, on Celery's task_prerun) sets
its own, or clears it before system work. What the session holds is tracked per database
connection (a new connection holds none) and only trusted when it was set outside a
transaction (a rolled-back transaction takes its set_config with it).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.backends.signals import connection_created

from config.database import planned_cursor

log = logging.getLogger(__name__)

SETTING = "app.account_id"
POLICY = "account_isolation"
# Sign-in reads users before anyone's shop is known; users are scoped by the ORM only.
UNSCOPED_TABLES = {"accounts_user"}
_CURRENT = f"NULLIF(current_setting('{SETTING}', true), '')"


def _is_postgres(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def scoping_enabled() -> bool:
    """Whether requests and tasks set the scope (DATABASE_ROW_LEVEL_SECURITY; on in production).

    Off, the policies are still in place and simply see no setting; the suite runs with it off
    (as the bypassing superuser the scope would change nothing but the query counts).
    """
    return settings.DATABASE_ROW_LEVEL_SECURITY and _is_postgres()


def business_tables() -> list[tuple[str, str]]:
    """(table, the policy's condition) for every table holding tenant rows."""
    tables = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table in UNSCOPED_TABLES:
            continue
        names = {f.name for f in meta.concrete_fields}
        if "account" not in names:
            continue
        field = meta.get_field("account")
        if field.model is model:
            condition = f"{_CURRENT} IS NULL OR {field.column} = {_CURRENT}::bigint"
        else:
            # A multi-table child (a channel's connection row): visible when its parent row is.
            parent = field.model._meta
            link = meta.get_ancestor_link(field.model)
            condition = f"{_CURRENT} IS NULL OR {link.column} IN (SELECT {parent.pk.column} FROM {parent.db_table})"
        tables.append((meta.db_table, condition))
    return sorted(tables)


def policies_apply(using: str = "default") -> int:
    """Create or refresh the policy on every business table; idempotent. Returns how many tables."""
    conn = connections[using]
    if not _is_postgres(conn):
        return 0
    tables = business_tables()
    with conn.cursor() as cursor:
        for table, condition in tables:
            quoted = conn.ops.quote_name(table)
            cursor.execute(f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {quoted}")
            cursor.execute(f"CREATE POLICY {POLICY} ON {quoted} USING ({condition}) WITH CHECK ({condition})")
    return len(tables)


def apply_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate receiver (accounts/apps.py): every app's tables exist by now."""
    if sender.label == "accounts":
        policies_apply(using)


def current_account_id() -> int | None:
    if not _is_postgres():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_CURRENT}")
        value = cursor.fetchone()[0]
    return int(value) if value else None


# What the session of a connection holds, as this process set it: {wrapper: (raw connection, value)}.
# Kept on the Django connection object and checked against its live DB-API connection, so a
# reconnect (CONN_MAX_AGE, an error, Celery closing old connections) is never taken for the old session.
_UNKNOWN = object()


def _session_value(conn=None):
    conn = conn or connection
    if conn.connection is None:
        return ""  # the next query opens a new session, which holds no scope
    held = getattr(conn, "_rls_session", None)
    if held is None or held[0]() is not conn.connection:
        return _UNKNOWN
    return held[1]


def _remember(value) -> None:
    """Note what the session now holds; a value set inside a transaction may yet be rolled back."""
    if connection.connection is None or connection.in_atomic_block:
        connection._rls_session = None
    else:
        connection._rls_session = (weakref.ref(connection.connection), value)


def _session_started(sender, connection, **kwargs) -> None:
    """connection_created receiver: a new session holds no scope."""
    if connection.vendor == "postgresql" and connection.connection is not None:
        connection._rls_session = (weakref.ref(connection.connection), "")


connection_created.connect(_session_started, dispatch_uid="accounts.rls.session_started")


def _swap(value: str) -> int | None:
    """Set the scope, answering the one it replaces: one statement (the CTE is read first)."""
    with planned_cursor(connection) as cursor:
        cursor.execute(
            f"WITH previous AS MATERIALIZED (SELECT {_CURRENT} AS value)"
            " SELECT previous.value, set_config(%s, %s, false) FROM previous",
            [SETTING, value],
        )
        before = cursor.fetchone()[0]
    _remember(value)
    return int(before) if before else None


def _set(value: str) -> None:
    with planned_cursor(connection) as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, value])
    _remember(value)


def session_scope(account_id: int | None) -> None:
    """Leave the session scoped to this account (None: unscoped), with no statement when it is already."""
    value = "" if account_id is None else str(int(account_id))
    if _session_value() != value:
        _set(value)


@contextmanager
def account_scope(account_id: int | None) -> Iterator[None]:
    """Within the block, PostgreSQL shows only this account's business rows (None: no restriction).

    Restores the previous scope afterwards, so scopes nest (a task run eagerly inside a request).
    """
    if not scoping_enabled():
        yield
        return
    previous = _swap("" if account_id is None else str(int(account_id)))
    try:
        yield
    finally:
        try:
            _set("" if previous is None else str(previous))
        except DatabaseError:
            # An aborted transaction cannot run the reset: never hand this session to the next user.
            log.warning("could not reset %s; closing the database connection", SETTING)
            if not connection.in_atomic_block:
                connection.close()


def account_id_of(model_label: str, pk: int) -> int | None:
    """The account a row belongs to, read without any scope (for tasks that get only an id)."""
    model = apps.get_model(model_label)
    return model._base_manager.filter(pk=pk).values_list("account_id", flat=True).first()


def request_scope(request, user) -> None:
    """Scope the rest of this request to the user's account (until AccountScopeMiddleware resets it).

    Called by the middleware for session sign-ins and by the API's account permission for token
    sign-ins, which DRF authenticates only inside the view.
    """
    if not scoping_enabled() or getattr(request, "_account_scope", None) is not None:
        return
    if user is None or not user.is_authenticated or user.is_superuser or user.account_id is None:
        return
    _set(str(int(user.account_id)))
    request._account_scope = user.account_id
    underlying = getattr(request, "_request", None)  # a DRF Request wraps the Django one
    if underlying is not None:
        underlying._account_scope = user.account_id


class AccountScopeMiddleware:
    """Scopes each request of a shop's staff to their account in PostgreSQL and always resets it afterwards,
    so a pooled connection never carries one shop's scope into the next request. Platform superusers
    and anonymous requests (sign-in, webhooks) run unscoped; webhooks scope themselves once the
    connection is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request._account_scope = None
        try:
            request_scope(request, getattr(request, "user", None))
            return self.get_response(request)
        finally:
            if request._account_scope is not None:
                try:
                    _set("")
                except DatabaseError:
                    log.warning("could not reset %s after a request; closing the database connection", SETTING)
                    connection.close()


# Set in Celery's worker processes (accounts/apps.py): there tasks own the session one at a time.
_worker = False


def worker_owns_sessions(value: bool = True) -> None:
    """Celery's worker_process_init / worker_init: scopes set by tasks may stay on the session."""
    global _worker
    _worker = value


@contextmanager
def task_scope(model_label: str, pk: int, account_id: int | None = None, *, eager: bool = False) -> Iterator[None]:
    """A task's scope: the account it was sent (else the one of its row, read without a scope).

    In a worker (not run eagerly inside a request or another task) the scope is left on the
    session for the next task of the same shop, which then needs no statement; `task_starting`
    changes or clears it before any other task. Elsewhere it is `account_scope`, which restores.
    """
    if not scoping_enabled():
        yield
        return
    if account_id is None:
        account_id = account_id_of(model_label, pk)
    if not _worker or eager:
        with account_scope(account_id):
            yield
        return
    session_scope(account_id)
    yield


def task_starting(sender=None, task=None, kwargs=None, **extra) -> None:
    """Celery's task_prerun, in a worker: a task sent its account gets it (task_scope sees it
    set already); any other task starts unscoped, never with the previous task's shop."""
    if not (_worker and scoping_enabled()) or (task is not None and task.request.is_eager):
        return
    account_id = (kwargs or {}).get("account_id")
    if account_id is None:
        session_scope(None)
    else:
        session_scope(int(account_id))


@contextmanager
def account_scope_of(model_label: str, pk: int) -> Iterator[None]:
    """`account_scope` for the account of one row (a task that was given only its id)."""
    if not scoping_enabled():
        yield
        return
    with account_scope(account_id_of(model_label, pk)):
        yield
