"""Health endpoints: liveness (the process answers) and readiness (what it depends on, checked now).

Readiness answers 503 only when this web process cannot serve (the database or Redis is
unreachable): a load balancer then takes it out. Workers, beat and the channels do not make a
web process unready, or one dead worker would take every web process out with it; they make
the answer `degraded` (still 200), and `?strict=1` turns degraded into 503 for monitoring.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_celery_beat.models import PeriodicTask

from .models import ChannelConnection, WorkerHeartbeat


def heartbeat_record(*, queue: str, hostname: str) -> None:
    """A worker consuming `queue` is alive now (the heartbeat task's one write)."""
    WorkerHeartbeat.objects.update_or_create(queue=queue, defaults={"hostname": hostname, "beat_at": timezone.now()})


def _age(now, then) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure to reach the database is the same answer
        return {"status": "down", "error": f"{type(error).__name__}: {error}"[:300]}
    return {"status": "ok", "vendor": connection.vendor}


def _redis() -> dict:
    if not settings.REDIS_URL:
        return {"status": "ok", "note": "not configured (per-process cache, filesystem broker)"}
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as error:  # refused, timed out, auth: all mean "unreachable"
        return {"status": "down", "error": f"{type(error).__name__}: {error}"[:300]}
    return {"status": "ok"}


def _workers(now) -> dict:
    max_age = settings.HEALTH_WORKER_MAX_AGE_SECONDS
    seen = {beat.queue: beat for beat in WorkerHeartbeat.objects.all()}
    queues = {}
    for queue in settings.CELERY_WORKER_QUEUES:
        beat = seen.get(queue)
        age = _age(now, beat.beat_at) if beat else None
        queues[queue] = {
            "status": "ok" if age is not None and age <= max_age else "degraded",
            "last_heartbeat_age_seconds": age,
            "hostname": beat.hostname if beat else "",
        }
    status = "ok" if all(q["status"] == "ok" for q in queues.values()) else "degraded"
    return {"status": status, "max_age_seconds": max_age, "queues": queues}


def _beat(now) -> dict:
    max_age = settings.HEALTH_BEAT_MAX_AGE_SECONDS
    last = (
        PeriodicTask.objects.filter(enabled=True, last_run_at__isnull=False)
        .order_by("-last_run_at")
        .values_list("last_run_at", flat=True)
        .first()
    )
    age = _age(now, last)
    return {
        "status": "ok" if age is not None and age <= max_age else "degraded",
        "last_run_age_seconds": age,
        "max_age_seconds": max_age,
    }


def _connections(now) -> dict:
    """Each active connection's last successful pull against three of its intervals (plus its offset)."""
    stale = []
    active = ChannelConnection.objects.filter(enabled=True, disconnect_requested_at__isnull=True).only(
        "id", "channel", "pull_interval_seconds", "pull_offset_seconds", "last_pull_at", "created_at"
    )
    count = 0
    for conn in active:
        count += 1
        allowed = timedelta(seconds=3 * conn.pull_interval_seconds + conn.pull_offset_seconds + 60)
        since = conn.last_pull_at or conn.created_at
        if now - since > allowed:
            stale.append(
                {
                    "id": conn.pk,
                    "channel": conn.channel,
                    "last_pull_age_seconds": _age(now, conn.last_pull_at),
                    "allowed_seconds": allowed.total_seconds(),
                }
            )
    return {"status": "degraded" if stale else "ok", "active": count, "stale": stale}


def readiness_report() -> dict:
    """Every check and the overall status: down (cannot serve), degraded (can serve, something behind), ok."""
    now = timezone.now()
    checks = {"database": _database(), "redis": _redis()}
    if checks["database"]["status"] == "ok":
        checks.update(workers=_workers(now), beat=_beat(now), connections=_connections(now))
    statuses = {check["status"] for check in checks.values()}
    overall = "down" if "down" in statuses else ("degraded" if "degraded" in statuses else "ok")
    return {"status": overall, "checks": checks}


@require_GET
def liveness(request):
    """The process is up and answers; it touches nothing else (a restart would not fix a dependency)."""
    return JsonResponse({"status": "ok"})


@require_GET
def readiness(request):
    report = readiness_report()
    strict = request.GET.get("strict") in {"1", "true", "yes"}
    unready = report["status"] == "down" or (strict and report["status"] == "degraded")
    return JsonResponse(report, status=503 if unready else 200)


class HealthCheckMiddleware:
    """Answers the health paths ahead of host validation and the HTTPS redirect.

    A load balancer and the container's own health check call a web host by its address over
    plain HTTP. With DJANGO_ALLOWED_HOSTS naming only the public name, Django would answer them
    400 (DisallowedHost), and with SECURE_SSL_REDIRECT 301: neither says whether this process can
    serve. Seen running the reference image: its HEALTHCHECK and compose's stayed unhealthy.
    Every other path keeps the host check and the redirect.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.views = {"/health/live/": liveness, "/health/ready/": readiness}

    def __call__(self, request):
        view = self.views.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)
