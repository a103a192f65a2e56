"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if app.conf.broker_url.startswith("filesystem://"):
    # The filesystem transport needs its folders to exist before a producer or worker starts.
    for folder in ("data_folder_in", "data_folder_out", "processed_folder"):
        path = app.conf.broker_transport_options.get(folder)
        if path:
            os.makedirs(path, exist_ok=True)
