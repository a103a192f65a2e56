"""Liveness and readiness (inventory/health.py): the database, Redis, each queue's worker heartbeat,
beat's last run and each connection's last successful pull."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from channels_reverb.models import ReverbConnection
from inventory.health import heartbeat_record
from inventory.models import ChannelConnection, WorkerHeartbeat
from inventory.tasks import worker_heartbeat_task

pytestmark = pytest.mark.django_db


def _everything_fresh(settings):
    for queue in settings.CELERY_WORKER_QUEUES:
        heartbeat_record(queue=queue, hostname="worker-1")
    call_command("declare_schedules", stdout=io.StringIO())
    PeriodicTask.objects.filter(name__startswith="inventory: re-enqueue").update(last_run_at=timezone.now())


def test_liveness_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/live/")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_is_ok_when_every_dependency_answered_recently(client, settings, account):
    _everything_fresh(settings)
    ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-0123456789")

    response = client.get("/health/ready/?strict=1")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "workers", "beat", "connections"}
    assert set(body["checks"]["workers"]["queues"]) == set(settings.CELERY_WORKER_QUEUES)
    assert body["checks"]["connections"] == {"status": "ok", "active": 1, "stale": []}


def test_a_queue_without_a_worker_degrades_readiness_but_keeps_web_in_service(client, settings):
    _everything_fresh(settings)
    WorkerHeartbeat.objects.filter(queue="sync.reverb").update(beat_at=timezone.now() - timedelta(minutes=10))

    relaxed = client.get("/health/ready/")
    strict = client.get("/health/ready/?strict=1")

    assert relaxed.status_code == 200 and strict.status_code == 503
    queues = relaxed.json()["checks"]["workers"]["queues"]
    assert queues["sync.reverb"]["status"] == "degraded"
    assert queues["sync.reverb"]["last_heartbeat_age_seconds"] >= 600
    assert queues["celery"]["status"] == "ok"
    assert relaxed.json()["status"] == "degraded"


def test_beat_that_sent_nothing_lately_degrades_readiness(client, settings):
    _everything_fresh(settings)
    PeriodicTask.objects.update(last_run_at=timezone.now() - timedelta(minutes=30))

    body = client.get("/health/ready/").json()

    assert body["checks"]["beat"]["status"] == "degraded"
    assert body["checks"]["beat"]["last_run_age_seconds"] >= 1800


def test_a_connection_whose_pulls_stopped_succeeding_is_named(client, settings, account):
    _everything_fresh(settings)
    fresh = ReverbConnection.objects.create(account=account, name="Fresh", api_token="rvb-0123456789")
    stuck = ReverbConnection.objects.create(account=account, name="Stuck", api_token="rvb-9876543210")
    ChannelConnection.objects.filter(pk=fresh.pk).update(last_pull_at=timezone.now())
    ChannelConnection.objects.filter(pk=stuck.pk).update(last_pull_at=timezone.now() - timedelta(hours=1))
    gone = ReverbConnection.objects.create(account=account, name="Off", api_token="rvb-5555555555", enabled=False)
    ChannelConnection.objects.filter(pk=gone.pk).update(last_pull_at=timezone.now() - timedelta(days=9))

    body = client.get("/health/ready/").json()

    connections = body["checks"]["connections"]
    assert connections["active"] == 2
    assert [(s["id"], s["channel"]) for s in connections["stale"]] == [(stuck.pk, "reverb")]
    assert connections["stale"][0]["allowed_seconds"] == 3 * stuck.pull_interval_seconds + 60


def test_redis_unreachable_makes_the_web_process_unready(client, settings):
    _everything_fresh(settings)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/health/ready/")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] == "down"
    assert response.json()["status"] == "down"


def test_the_heartbeat_task_records_its_queue_and_declare_schedules_sends_one_to_every_queue(settings):
    worker_heartbeat_task.apply(args=["sync.shopify"])
    call_command("declare_schedules", stdout=io.StringIO())

    assert WorkerHeartbeat.objects.get(queue="sync.shopify").beat_at > timezone.now() - timedelta(minutes=1)
    heartbeats = PeriodicTask.objects.filter(task="inventory.worker_heartbeat")
    assert {(t.queue, tuple(json.loads(t.args))) for t in heartbeats} == {
        (q, (q,)) for q in settings.CELERY_WORKER_QUEUES
    }
    assert all(t.expire_seconds == 60 for t in heartbeats)


def test_health_checks_by_address_over_http_are_answered_under_production_host_and_https_rules(client, settings):
    """A load balancer or the container's HEALTHCHECK calls http://<address>:8000/health/...: the
    public name alone is allowed and HTTP redirects to HTTPS, yet the health paths must answer."""
    _everything_fresh(settings)
    settings.ALLOWED_HOSTS = ["office.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    live = client.get("/health/live/", HTTP_HOST="10.0.3.7:8000")
    ready = client.get("/health/ready/?strict=1", HTTP_HOST="127.0.0.1:8000")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")
    # A dependency down is still a 503 there, not hidden by the early answer.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/health/ready/", HTTP_HOST="127.0.0.1:8000").status_code == 503


def test_other_paths_keep_the_host_check_and_the_https_redirect(client, settings):
    settings.ALLOWED_HOSTS = ["office.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/admin/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    redirect = client.get("/admin/login/", HTTP_HOST="office.example.com")
    assert (redirect.status_code, redirect["Location"]) == (301, "https://office.example.com/admin/login/")
    # Only the exact health paths are answered early: a POST or a neighbour path is not.
    assert client.get("/health/live/extra", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.post("/health/live/", HTTP_HOST="office.example.com", secure=True).status_code == 405
