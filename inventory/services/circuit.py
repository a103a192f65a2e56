"""A circuit breaker per connection: after repeated failed pushes, pushes to it pause with an alert.

A push that fails on the channel's side (no answer, 5xx: `TransientChannelError`, not a rate
limit) counts against its connection; CIRCUIT_BREAKER_FAILURES in a row open the circuit. While
open, converging a listing there sends nothing (the sweeper keeps offering it), except that every
CIRCUIT_BREAKER_PROBE_SECONDS one worker is let through as the probe. Ends are never held
back (a sale elsewhere must not leave the item for sale there): they are always tried. A probe that succeeds
closes the circuit and resolves the alert; the sweeper then pushes the rest within a minute.
Pulls and webhooks are not affected: sales on that channel are still recorded.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ..channels import ChannelError, RateLimited, StillProcessing
from ..models import AlertKind, ChannelConnection
from .alerts import alert_raise, alerts_resolve_cause

log = logging.getLogger(__name__)


def _dedupe_key(connection_id: int) -> str:
    return f"circuit-open:{connection_id}"


def circuit_counts(error: Exception) -> bool:
    """Whether a failed push says the channel is down (not a refusal of this one listing, not a rate
    limit, not a write the channel took and is still processing)."""
    return isinstance(error, ChannelError) and error.transient and not isinstance(error, RateLimited | StillProcessing)


def circuit_probe_claim(connection_id: int) -> bool:
    """While the circuit is open: True for the one caller that may probe now (compare-and-set), else False."""
    now = timezone.now()
    due = now - timedelta(seconds=settings.CIRCUIT_BREAKER_PROBE_SECONDS)
    return bool(
        ChannelConnection.objects.filter(pk=connection_id, circuit_opened_at__isnull=False)
        .filter(Q(circuit_probe_at__isnull=True) | Q(circuit_probe_at__lte=due))
        .update(circuit_probe_at=now)
    )


def circuit_push_failed(*, connection_id: int, error: Exception) -> bool:
    """Count a failed push; open the circuit (with an alert) at the threshold. Returns whether it is open."""
    if not circuit_counts(error):
        return False
    ChannelConnection.objects.filter(pk=connection_id).update(push_failures=F("push_failures") + 1)
    now = timezone.now()
    opened = ChannelConnection.objects.filter(
        pk=connection_id, circuit_opened_at__isnull=True, push_failures__gte=settings.CIRCUIT_BREAKER_FAILURES
    ).update(circuit_opened_at=now, circuit_probe_at=now)
    connection = ChannelConnection.objects.filter(pk=connection_id).only("account_id", "name", "push_failures").first()
    if connection is None:
        return False
    if opened:
        log.warning("circuit opened for connection %s after %d failed pushes", connection_id, connection.push_failures)
        alert_raise(
            account_id=connection.account_id,
            kind=AlertKind.CONNECTION,
            dedupe_key=_dedupe_key(connection_id),
            title=f"{connection.name}: changes are paused, the channel keeps failing",
            message=(
                f"The last {connection.push_failures} pushes failed ({type(error).__name__}: {error}). New listings, "
                f"changes and ends wait; one is tried every {settings.CIRCUIT_BREAKER_PROBE_SECONDS} s and they all "
                "resume by themselves when it works. Sales there are still recorded."
            ),
            connection=connection,
        )
    return connection.push_failures >= settings.CIRCUIT_BREAKER_FAILURES


def circuit_push_succeeded(*, connection_id: int) -> bool:
    """A push went through: reset the count, and close an open circuit. Returns whether it was open."""
    closed = ChannelConnection.objects.filter(pk=connection_id, circuit_opened_at__isnull=False).update(
        push_failures=0, circuit_opened_at=None, circuit_probe_at=None
    )
    if closed:
        log.info("circuit closed for connection %s: a probe push succeeded", connection_id)
        alerts_resolve_cause(dedupe_key=_dedupe_key(connection_id), resolution="A push worked again; changes resumed.")
        return True
    ChannelConnection.objects.filter(pk=connection_id, push_failures__gt=0).update(push_failures=0)
    return False
