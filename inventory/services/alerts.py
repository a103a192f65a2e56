"""Alerts for staff: raised once per subject while open."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Alert, Conflict, ConflictStatus


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


def alerts_acknowledge(*, alert_ids: list[int], user) -> int:
    """Staff have seen these alerts. Returns how many were open."""
    return Alert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )


def conflicts_resolve(*, conflict_ids: list[int], user, note: str = "") -> int:
    """Staff settled these double sales (one order cancelled and refunded on its channel).

    Their alerts are acknowledged with them. Returns how many were open.
    """
    with transaction.atomic():
        open_ids = list(
            Conflict.objects.select_for_update()
            .filter(pk__in=conflict_ids, status=ConflictStatus.OPEN)
            .values_list("pk", flat=True)
        )
        fields = {"status": ConflictStatus.RESOLVED, "resolved_at": timezone.now(), "resolved_by": user}
        if note:
            fields["note"] = note
        Conflict.objects.filter(pk__in=open_ids).update(**fields)
        Alert.objects.filter(conflict_id__in=open_ids, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=user
        )
    return len(open_ids)


def conflict_settle(*, conflict_id: int, cancel: str, actor, note: str = "") -> Conflict:
    """Settle a double sale by cancelling one of its orders, and record how it was settled.

    cancel="loser": the usual end, the later buyer is cancelled (refund them on their channel).
    cancel="winner": the first sale fell through; its order is cancelled, the item goes back
    on sale and is listed again (order_cancel), and the later buyer can be offered it.
    Both in one transaction with the conflict's resolution and its alert.
    """
    from .orders import order_cancel

    if cancel not in ("loser", "winner"):
        raise ValueError(f"cancel must be 'loser' or 'winner', not {cancel!r}")
    with transaction.atomic():
        conflict = (
            Conflict.objects.select_for_update(of=("self",))
            .select_related("winning_order__connection", "losing_order__connection")
            .get(pk=conflict_id)
        )
        if conflict.status != ConflictStatus.OPEN:
            return conflict
        order = conflict.losing_order if cancel == "loser" else conflict.winning_order
        why = "double sale: the other order was first" if cancel == "loser" else "double sale: this sale fell through"
        order_cancel(order_id=order.pk, actor=actor, reason=why)
        shop = order.connection.name if order.connection else order.channel
        record = f"Cancelled the {'losing' if cancel == 'loser' else 'winning'} order {order} ({shop})."
        if cancel == "winner":
            record += " The item is back on sale."
        conflicts_resolve(conflict_ids=[conflict.pk], user=actor.user, note=f"{record} {note}".strip())
        conflict.refresh_from_db()
    return conflict
