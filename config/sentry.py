"""Optional error reporting to Sentry through its SDK, switched on by SENTRY_DSN (config/settings.py).

No personal data is sent (send_default_pii=False), and every event passes the same redaction as
the log lines (config/log_redaction.py) before it leaves: messages, exception values, breadcrumbs,
local variables and request data, so a marketplace token in an exception is never reported.
"""

from __future__ import annotations

from typing import Any

from config.log_redaction import MASK, redact

# Keys whose values are dropped whole, whatever they look like.
_SECRET_KEYS = (
    "authorization",
    "cookie",
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "x-api-key",
    "signature",
    "csrf",
    "session",
)


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in _SECRET_KEYS)


def scrub(value: Any) -> Any:
    """The value with every string redacted and every secret-named key masked, recursively."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: (MASK if _is_secret_key(k) and v not in (None, "") else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def before_send(event: dict, hint: dict) -> dict:
    """Sentry's before_send (and before_send_transaction / before_breadcrumb): the event, scrubbed."""
    return scrub(event)


def before_breadcrumb(crumb: dict, hint: dict) -> dict:
    return scrub(crumb)


def init_sentry(dsn: str, *, environment: str, release: str | None, traces_sample_rate: float) -> None:
    """Start the SDK with the Django and Celery integrations."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=before_breadcrumb,
    )
