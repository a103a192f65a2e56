"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, task_prerun, worker_init, worker_process_init

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


@worker_init.connect
@worker_process_init.connect
def _tasks_own_the_database_session(**kwargs):
    """In a worker, tasks run one at a time on a process's (or thread's) connection: a task's
    row-level security scope may stay on the session for the next task (accounts/rls.py)."""
    from accounts.rls import worker_owns_sessions

    worker_owns_sessions()


@worker_init.connect
def _compile_the_validators_before_the_pool_forks(**kwargs):
    """In the worker's main process, before the pool's processes are forked from it: each of them
    starts with the patterns compiled, instead of compiling them on its first order (config/boot.py)."""
    from config.boot import compile_field_validators

    compile_field_validators()


@worker_process_init.connect
def _warm_the_pool_process(**kwargs):
    """As a pool process starts, not on its first task: the result backend (otherwise the first task
    that queues another, a sale queueing its ends, loads it: an entry-point scan of about 10 ms) and
    the broker connection that task publishes on, with the queues declared (config/boot.py)."""
    from config.boot import connect_the_broker

    app.backend  # noqa: B018
    connect_the_broker(app)


@task_prerun.connect
def _task_account_scope(sender=None, task=None, kwargs=None, **extra):
    """Each task starts with its own shop's scope, or none: never the previous task's."""
    from accounts.rls import task_starting

    task_starting(sender=sender, task=task, kwargs=kwargs)
