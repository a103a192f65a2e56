"""Structured logs: request ids and task ids on every line, JSON when LOG_FORMAT=json, secrets still
redacted (config/log_context.py, config/log_redaction.py); Sentry only with a DSN (config/sentry.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from accounts.encryption import decrypt, encrypt
from config.celery import app
from config.log_context import LogContextFilter, json_formatter, request_id_var
from config.log_redaction import MASK, SecretRedactionFilter
from config.sentry import before_send

ROOT = Path(__file__).resolve().parent.parent
probe_log = logging.getLogger("tests.log_probe")


@app.task(name="tests.log_probe")
def log_probe_task(word: str) -> None:
    probe_log.warning("probe says %s", word)


@pytest.fixture
def json_lines():
    """The JSON lines the product's console handler would print (same formatter and filters as settings)."""
    yield from _json_lines(logging.getLogger())


@pytest.fixture
def probe_json_lines():
    """The same, on the probe task's own logger: a worker started in a test re-configures the root's handlers."""
    yield from _json_lines(probe_log)


def _json_lines(root: logging.Logger):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    for name in settings.LOGGING["handlers"]["console"]["filters"]:
        handler.addFilter({"log_context": LogContextFilter, "redact_secrets": SecretRedactionFilter}[name]())
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)


def test_the_console_handler_adds_the_ids_before_redacting():
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["log_context", "redact_secrets"]
    assert settings.MIDDLEWARE[0] == "config.log_context.RequestIdMiddleware"


@pytest.mark.django_db
def test_a_request_log_line_is_json_with_the_callers_request_id(client, json_lines):
    response = client.get("/health/live/", HTTP_X_REQUEST_ID="edge-7f3a.42")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "edge-7f3a.42"
    access = [line for line in json_lines() if line["logger"] == "backoffice.request"]
    assert len(access) == 1
    assert access[0]["request_id"] == "edge-7f3a.42"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/health/live/", 200)
    assert access[0]["level"] == "INFO" and access[0]["task_id"] is None


@pytest.mark.django_db
def test_every_line_of_a_request_shares_its_id_and_a_missing_or_unsafe_id_is_replaced(client, json_lines):
    # A 404 makes Django's own request logger speak inside the request as well.
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="bad id\nforged: line")

    request_id = response["X-Request-ID"]
    assert response.status_code == 404
    assert request_id != "bad id\nforged: line" and len(request_id) == 32
    lines = json_lines()
    assert {line["logger"] for line in lines} >= {"django.request", "backoffice.request"}
    assert {line["request_id"] for line in lines} == {request_id}
    # And the next request without a header gets a new id of its own
    assert client.get("/health/live/")["X-Request-ID"] not in ("", request_id)
    assert request_id_var.get() is None


def test_a_secret_in_a_json_line_is_still_redacted(json_lines):
    decrypt(encrypt("s3cr3t-oauth-value-998877"))  # as a connection's token is, before a push
    token = request_id_var.set("req-secret")
    try:
        logging.getLogger("tests.secret").warning("pushing with s3cr3t-oauth-value-998877 and password=hunter22")
    finally:
        request_id_var.reset(token)

    (line,) = json_lines()
    assert "s3cr3t" not in json.dumps(line) and "hunter22" not in json.dumps(line)
    assert line["message"] == f"pushing with {MASK} and password={MASK}"
    assert line["request_id"] == "req-secret"


def test_a_task_log_line_carries_the_task_id_and_name(json_lines):
    result = log_probe_task.apply(args=["hello"], task_id="task-id-0001")

    assert result.successful()
    (line,) = [line for line in json_lines() if line["logger"] == "tests.log_probe"]
    assert line["task_id"] == "task-id-0001"
    assert line["task_name"] == "tests.log_probe"
    assert line["message"] == "probe says hello"
    # And after the task nothing is left behind for the next line
    logging.getLogger("tests.after").warning("after")
    assert json_lines()[-1]["task_id"] is None


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_queued_over_redis_in_a_request_logs_the_task_and_the_request_id(probe_json_lines):
    from tests.test_sync_e2e_harness import real_worker, wait_until

    with real_worker(concurrency=1):
        token = request_id_var.set("req-queued-9")
        try:
            result = log_probe_task.delay("from the worker")
        finally:
            request_id_var.reset(token)

        def probe_lines():
            return [line for line in probe_json_lines() if line["logger"] == "tests.log_probe"]

        assert wait_until(probe_lines, timeout=20), "the worker did not run the task within 20 s"
    (line,) = probe_lines()
    assert line["task_id"] == result.id
    assert line["request_id"] == "req-queued-9"
    assert line["message"] == "probe says from the worker"


def _run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    environment.pop("SENTRY_DSN", None) if "SENTRY_DSN" not in env else None
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_log_format_switches_between_plain_and_json_by_environment():
    code = "import logging; logging.getLogger('tests.switch').warning('token=abcdef123456 switched')"

    as_json = _run_django(code, LOG_FORMAT="json").stderr.strip().splitlines()[-1]
    plain = _run_django(code, LOG_FORMAT="plain").stderr.strip().splitlines()[-1]

    line = json.loads(as_json)
    assert (line["logger"], line["level"], line["message"]) == ("tests.switch", "WARNING", f"token={MASK} switched")
    assert "request_id" in line and "task_id" in line and "time" in line
    assert plain.endswith(f"WARNING tests.switch [req=None task=None] token={MASK} switched")


def test_sentry_starts_only_when_a_dsn_is_set():
    code = "import sentry_sdk; print(sentry_sdk.get_client().is_active(), sentry_sdk.get_client().options['send_default_pii'])"

    without = _run_django(code).stdout.split()
    with_dsn = _run_django(code, SENTRY_DSN="https://publickey@o0.ingest.sentry.invalid/1").stdout.split()

    assert without[0] == "False"
    assert with_dsn == ["True", "False"]


def test_sentry_events_are_scrubbed_like_log_lines():
    decrypt(encrypt("shop-refresh-token-556677"))
    event = {
        "message": "refresh failed for shop-refresh-token-556677",
        "exception": {"values": [{"type": "PermanentChannelError", "value": "401 Bearer abcdefghijkl0123"}]},
        "request": {"headers": {"Authorization": "Bearer xyz", "X-Request-ID": "r1"}, "cookies": {"sessionid": "s"}},
        "extra": {"connection": {"client_secret": "raw-secret", "name": "Main shop"}},
        "breadcrumbs": {"values": [{"message": "GET /api/?access_token=tok123456"}]},
    }

    scrubbed = json.dumps(before_send(event, {}))

    for leaked in ("shop-refresh-token-556677", "abcdefghijkl0123", "xyz", "raw-secret", "tok123456"):
        assert leaked not in scrubbed
    assert "Main shop" in scrubbed and '"X-Request-ID": "r1"' in scrubbed
