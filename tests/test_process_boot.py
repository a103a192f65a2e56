"""What a web or worker process loads as it boots, so that its first requests and tasks (a sale's
webhook, its ends) do not pay for it (bench/README.md, sixth and twelfth passes of issue 14): the
URLconf, Celery's result backend and the validators' patterns (config/boot.py). Each probe runs in
a fresh interpreter, as gunicorn and Celery start one."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WEB = """
import sys
import config.wsgi
from django.core.validators import EmailValidator
from django.utils.functional import empty
from django.urls import get_resolver
from config.celery import app
print(get_resolver()._populated, "config.urls" in sys.modules, "backend" in app._local.__dict__,
      EmailValidator.domain_regex._wrapped is not empty)
"""

# The pool's processes are forked from the worker's main process after worker_init: what that
# compiled, each of them has.
POOL_PARENT = """
import django
django.setup()
from celery.signals import worker_init
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator, validate_email
from django.utils.functional import empty
import config.celery
patterns = (EmailValidator.domain_regex, EmailValidator.user_regex, URLValidator.regex)
print(*(pattern._wrapped is not empty for pattern in patterns))
worker_init.send(sender=None)
print(*(pattern._wrapped is not empty for pattern in patterns))
validate_email("buyer@example.com")
try:
    validate_email("buyer@exa mple.com")
except ValidationError:
    print("refused")
"""

WORKER = """
import django
django.setup()
from celery.signals import worker_process_init
from config.celery import app

def pooled_connection_is_open():
    connection = app.pool.acquire(block=True)
    try:
        return connection.connected
    finally:
        connection.release()

before = "backend" in app._local.__dict__, pooled_connection_is_open()
worker_process_init.send(sender=None)
print(*before, "backend" in app._local.__dict__, pooled_connection_is_open())
"""


def _probe(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_a_web_process_is_warm_before_its_first_request():
    assert _probe(WEB)[-4:] == ["True", "True", "True", "True"]


def test_the_worker_compiles_the_validators_patterns_before_its_pool_forks():
    # Before: nothing compiled them (the probe would prove nothing otherwise). After: all of
    # them, and they still tell a good address from a bad one.
    assert _probe(POOL_PARENT)[-7:] == ["False", "False", "False", "True", "True", "True", "refused"]


def test_each_worker_pool_process_loads_the_result_backend_and_connects_the_broker_as_it_starts():
    # Before: neither (the probe would prove nothing otherwise). After: both, and the connection
    # waits in the app's pool, where its first publish takes it.
    assert _probe(WORKER)[-4:] == ["False", "False", "True", "True"]


def test_a_broker_that_is_down_does_not_stop_a_pool_process_from_starting(caplog):
    from celery import Celery

    from config.boot import connect_the_broker

    down = Celery("boot-probe", broker="redis://127.0.0.1:1/0", set_as_current=False)
    with caplog.at_level("WARNING", logger="config.boot"):
        assert connect_the_broker(down, timeout=1) is False
    assert "could not be reached" in caplog.text
    assert "its first task connects" in caplog.text
