"""A logging filter that keeps secrets out of every log line, whatever code logged them.

Two nets, applied to the formatted message, the exception text and the stack:
- every secret this process has decrypted or encrypted (accounts/encryption.py remembers them)
  is replaced by `[secret]`, so a token echoed in an exception, a URL or a repr never gets out;
- credentials recognisable by their form (Authorization / API-key headers, `Bearer ...`,
  `token=`/`secret=`/`password=` pairs, Shopify's shpat_ and Stripe's sk_/whsec_ prefixes)
  are masked even when they were never stored here (a token typed into a failing form).

It is attached to every handler in settings.LOGGING and to Celery's handlers (config/celery.py),
because a filter on a logger does not see records propagated from its children.
"""

from __future__ import annotations

import logging
import re

from accounts.encryption import revealed_secrets

MASK = "[secret]"

_PATTERNS = [
    # Header lines and header dicts: Authorization: Bearer x / 'x-api-key': 'k:s'
    re.compile(
        r"(?i)((?:authorization|proxy-authorization|x-api-key|x-amz-access-token|x-shopify-access-token|"
        r"x-wc-webhook-signature|x-shopify-hmac-sha256|cookie|set-cookie)['\"]?\s*[:=]\s*['\"]?)"
        r"((?:bearer|basic|token)\s+)?[^'\"\s,}]+"
    ),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=|-]{8,}"),
    # key=value in query strings, form bodies, JSON and reprs.
    re.compile(
        r"(?i)(['\"]?\b(?:access_token|refresh_token|api_token|client_secret|consumer_secret|consumer_key|"
        r"shared_secret|webhook_secret|password|passwd|secret|token|code_verifier|aws_secret_access_key|"
        r"lwa_client_secret|verification_token)['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+"
    ),
    re.compile(r"\b(?:shpat|shpca|shppa|shpss)_[A-Za-z0-9]{8,}"),
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"),
    re.compile(r"\bAtz[ra]\|[A-Za-z0-9_|.-]{8,}"),
    re.compile(r"\bcs_[a-f0-9]{20,}"),
]


def redact(text: str) -> str:
    """The text with every known secret and every credential-shaped value masked."""
    if not text:
        return text
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(revealed_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: "".join(g or "" for g in m.groups()) + MASK, text)
    return text


class SecretRedactionFilter(logging.Filter):
    """Rewrites the record in place: the final message, exception and stack text, redacted; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format must still be logged, and still redacted
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            # Formatters (plain or JSON) fall back to exc_info when it is there: only the redacted text stays.
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def add_to_handlers(logger: logging.Logger) -> None:
    """Put the filter on each of this logger's handlers (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, SecretRedactionFilter) for f in handler.filters):
            handler.addFilter(SecretRedactionFilter())
