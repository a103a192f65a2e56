"""Scheduled inventory work. Each task calls one service."""

import logging

from celery import shared_task

from .services import items_auto_archive

log = logging.getLogger(__name__)


@shared_task(name="inventory.auto_archive", soft_time_limit=600, time_limit=660)
def auto_archive_task() -> dict:
    """Archive sold and shipped items past their account's auto-archive age."""
    archived = items_auto_archive()
    log.info("auto-archive: %s", {slug: len(skus) for slug, skus in archived.items()})
    return {slug: len(skus) for slug, skus in archived.items()}
