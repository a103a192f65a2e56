"""Alerts for staff: raised once per subject while open."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ..models import Alert


def alert_raise(*, account_id: int, kind: str, dedupe_key: str, title: str, message: str = "", **refs) -> Alert:
    """Raise an alert, or return the open one with the same subject (dedupe_key)."""
    existing = Alert.objects.filter(account_id=account_id, dedupe_key=dedupe_key, acknowledged_at__isnull=True).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Alert.objects.create(
                account_id=account_id, kind=kind, dedupe_key=dedupe_key, title=title[:200], message=message, **refs
            )
    except IntegrityError:
        return Alert.objects.get(account_id=account_id, dedupe_key=dedupe_key, acknowledged_at__isnull=True)
