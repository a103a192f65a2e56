"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids (task_prerun/postrun) and the queuing request's id (before_task_publish) on every log line.
import config.log_context  # noqa: E402,F401


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_secrets_in_worker_logs(logger, **kwargs):
    """Celery replaces the root logger's handlers with its own: they get the secret redaction filter too,
    and the request/task ids (and the JSON formatter when LOG_FORMAT=json)."""
    from config.log_context import configure_worker_handlers
    from config.log_redaction import add_to_handlers

    configure_worker_handlers(logger)
    add_to_handlers(logger)
