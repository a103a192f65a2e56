"""Scheduled billing work. Each task calls one service and is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from .services import overage_report_all, stripe_events_retry, subscriptions_resync, usage_rollup

log = logging.getLogger(__name__)


@shared_task(name="billing.usage_rollup", soft_time_limit=600, time_limit=660)
def usage_rollup_task() -> int:
    """Move cached usage counters into the period rows, record peaks, refresh payment banners."""
    return usage_rollup()


@shared_task(name="billing.report_overage", soft_time_limit=600, time_limit=660)
def report_overage_task() -> int:
    """Report yesterday's listings above BUSINESS limits to Stripe (one meter event per account)."""
    reports = overage_report_all()
    log.info("billing: %d overage report(s), %d sent", len(reports), sum(1 for r in reports if r.sent_at))
    return len(reports)


@shared_task(name="billing.retry_stripe_events", soft_time_limit=300, time_limit=330)
def retry_stripe_events_task() -> int:
    """Process stored Stripe events that are still unprocessed (Stripe was unreachable, a crash)."""
    return stripe_events_retry()


@shared_task(name="billing.resync_subscriptions", soft_time_limit=1800, time_limit=1860)
def resync_subscriptions_task() -> int:
    """Re-read every live subscription from Stripe (catches webhooks that never arrived)."""
    return len(subscriptions_resync())
