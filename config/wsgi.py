import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _warm() -> None:
    """What a process's first request would load otherwise, loaded as it boots: the URLconf
    (every app's views, the admin and the API, and their names for reverse(): about 180 ms of
    CPU on the 2-vCPU machine) and Celery's result backend (an entry-point scan, about 10 ms;
    kept per thread, so this serves the sync workers' one thread). Without it the first sale
    webhook a fresh gunicorn worker takes waits for both (bench/README.md, sixth pass), and a
    broken URLconf fails the boot instead of a request. The validators' patterns too
    (config/boot.py): the admin and the API validate e-mail addresses and URLs."""
    from django.urls import reverse

    from config.boot import compile_field_validators
    from config.celery import app as celery_app

    reverse("admin:index")  # imports the URLconf and fills the resolver's reverse lookups
    celery_app.backend  # noqa: B018 (loads it)
    compile_field_validators()


_warm()
