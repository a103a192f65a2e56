"""The floor stack's Celery app (configuration from the Django settings' CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor_stack.settings")

app = Celery("floor", include=["floor_stack.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


def market_queue(market: int) -> str:
    return f"floor.m{market}"
