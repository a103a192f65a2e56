"""The reference deployment (compose.yaml) runs what the settings need: a worker for every queue, one beat."""

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def _services() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def _queues(service: dict) -> set[str]:
    command = service.get("command") or []
    words = " ".join(command).split()
    if "--queues" in words:
        named = words[words.index("--queues") + 1]
        if named == "$$QUEUES":
            named = service["environment"]["QUEUES"]
        return set(named.split(","))
    return set()


def test_every_queue_has_exactly_one_worker_service_and_there_is_one_beat():
    services = _services()
    consumed = [q for s in services.values() for q in _queues(s)]

    assert sorted(consumed) == sorted(settings.CELERY_WORKER_QUEUES)
    beats = [name for name, s in services.items() if "beat" in " ".join(s.get("command") or [])]
    assert beats == ["beat"]


def test_every_app_service_reaches_postgres_as_the_non_superuser_role_and_redis():
    services = _services()
    app = [name for name, s in services.items() if s.get("image") == "backoffice:latest"]

    assert {"web", "beat", "migrate", "worker-vr"} <= set(app)
    for name in app:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://backoffice:"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert "NOSUPERUSER NOBYPASSRLS" in init
