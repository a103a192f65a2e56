"""`manage.py check --deploy`: row-level security is on but the database role would ignore it."""

from django.conf import settings
from django.core.checks import Warning, register
from django.db import connection


@register("security", deploy=True)
def row_level_security_role(app_configs=None, **kwargs):
    if not settings.DATABASE_ROW_LEVEL_SECURITY or connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            role, superuser, bypass = cursor.fetchone()
    except Exception:  # an unreachable database is reported by everything else; this check has nothing to add
        return []
    if not (superuser or bypass):
        return []
    return [
        Warning(
            f"The database role {role!r} is a superuser or has BYPASSRLS: PostgreSQL's row-level security "
            "does not apply to it, so the tenant policies protect nothing.",
            hint="Connect as an ordinary role that owns the tables (docs/DEPLOYMENT.md, 'Database roles').",
            id="accounts.W001",
        )
    ]
