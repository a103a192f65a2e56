"""What a web or worker process loads as it boots, so that its first requests and tasks (a sale's
webhook, its ends) do not pay for it (bench/README.md, sixth pass of issue 14): the URLconf and
Celery's result backend. Each probe runs in a fresh interpreter, as gunicorn and Celery start one."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WEB = """
import sys
import config.wsgi
from django.urls import get_resolver
from config.celery import app
print(get_resolver()._populated, "config.urls" in sys.modules, "backend" in app._local.__dict__)
"""

WORKER = """
import django
django.setup()
from celery.signals import worker_process_init
from config.celery import app
before = "backend" in app._local.__dict__
worker_process_init.send(sender=None)
print(before, "backend" in app._local.__dict__)
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
    assert _probe(WEB)[-3:] == ["True", "True", "True"]


def test_each_worker_pool_process_loads_the_result_backend_as_it_starts():
    assert _probe(WORKER)[-2:] == ["False", "True"]
