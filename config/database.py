"""Database helpers below the apps: a cursor whose statements PostgreSQL keeps planned."""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper


def planned_cursor(connection):
    """`connection.cursor()`, its statements prepared on the server: on PostgreSQL with
    DATABASE_PREPARED_STATEMENTS a psycopg cursor that binds its parameters on the server,
    which psycopg prepares from a statement's first run (the connection's prepare_threshold)
    and keeps per session, up to its prepared_max. Only for SQL of a fixed shape: each text
    and set of parameter types is one statement held by the session. The cursor is Django's
    wrapper as usual (statement logging, execute wrappers, database errors)."""
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    # Django builds its cursors from the psycopg connection's cursor_factory (client-side
    # binding, which never prepares): this one cursor is made from the server-binding class.
    raw = connection.connection
    default = raw.cursor_factory
    raw.cursor_factory = ServerBindingCursor
    try:
        cursor = connection.cursor()
    finally:
        raw.cursor_factory = default
    if isinstance(cursor, CursorDebugWrapper):
        return _PlannedDebugWrapper(cursor.cursor, connection)
    return cursor


class _PlannedDebugWrapper(CursorDebugWrapper):
    """Logs a statement with its values as for the ORM's cursors (DEBUG, captured queries in
    tests): Django reads that text back from a client-binding cursor, and a server-binding one
    does not keep it, so it is composed here."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)
