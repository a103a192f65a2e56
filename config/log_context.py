"""Request and task ids on every log line: contextvars, a logging filter, a middleware and Celery signals.

- `RequestIdMiddleware` (first in settings.MIDDLEWARE) takes the caller's `X-Request-ID` when it is a
  sane token (a proxy or load balancer usually sets one), else makes a new one; it is returned in the
  response's `X-Request-ID` header and logged once per request as an access line.
- Celery's `task_prerun` / `task_postrun` signals set the running task's id and name; a task queued
  while a request runs carries that request's id in its message headers, so its lines share it.
- `LogContextFilter` copies the current ids onto each record (`request_id`, `task_id`, `task_name`);
  the plain and JSON formatters in settings.LOGGING print them. It sits on every handler, beside the
  secret redaction filter (config/log_redaction.py).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.core.signals import request_finished

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)
task_name_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_name", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is echoed into logs and a response header: only a short token, nothing that could
# forge a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The message header that carries the queuing request's id to the worker.
TASK_HEADER = "request_id"

access_log = logging.getLogger("backoffice.request")


def receiver_strong(signal, uid):
    """Connect a handler by a strong reference, once (a weakly held one was found dead after setup)."""

    def connect(func):
        signal.connect(func, weak=False, dispatch_uid=uid)
        return func

    return connect


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(value: str | None) -> str:
    """The caller's id when it is a safe token, else a fresh one."""
    if value and _SAFE_REQUEST_ID.match(value):
        return value
    return new_request_id()


class LogContextFilter(logging.Filter):
    """Adds request_id, task_id and task_name to every record (None outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        # Celery's own records may already carry the task's id; the contextvar agrees with it.
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-ID or a new one), returns it, logs one access line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        # Kept until request_finished: Django logs a 4xx/5xx line after the middleware chain returns.
        request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response


@receiver_strong(request_finished, "log_context.end_request")
def _end_request(**kwargs):
    """The response is sent (closed): lines after it, in this thread, belong to no request."""
    request_id_var.set(None)


@receiver_strong(before_task_publish, "log_context.carry_request_id")
def _carry_request_id_to_task(headers=None, **kwargs):
    """A task queued inside a request (or inside another task) carries the request's id."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


@receiver_strong(task_prerun, "log_context.enter_task")
def _enter_task(task_id=None, task=None, **kwargs):
    task_id_var.set(task_id)
    task_name_var.set(getattr(task, "name", None))
    request_id_var.set(getattr(task.request, TASK_HEADER, None) if task is not None else None)


@receiver_strong(task_postrun, "log_context.leave_task")
def _leave_task(**kwargs):
    task_id_var.set(None)
    task_name_var.set(None)
    request_id_var.set(None)


def configure_worker_handlers(logger: logging.Logger) -> None:
    """Celery replaces the root logger's handlers with its own: give them the context filter and,
    when LOG_FORMAT is json, the JSON formatter (Celery's plain formatters already print task ids)."""
    from django.conf import settings

    for handler in logger.handlers:
        if not any(isinstance(f, LogContextFilter) for f in handler.filters):
            # Before the redaction filter, which Celery's signal handler adds afterwards.
            handler.filters.insert(0, LogContextFilter())
        if settings.LOG_FORMAT == "json":
            handler.setFormatter(json_formatter())


JSON_FIELDS = ["asctime", "levelname", "name", "message", "request_id", "task_id", "task_name"]


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time", "name": "logger"})
