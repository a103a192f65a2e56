"""What a web or worker process prepares as it boots, so that its first request or task does not.

A fresh process pays for what Django and the libraries build on first use. Left to the first
sale, that cost lands on the webhook or the task that records it (bench/README.md, issue 14).
"""

from __future__ import annotations

from django.apps import apps
from django.utils.functional import SimpleLazyObject, empty


def compile_field_validators() -> int:
    """Compile the patterns of every model field's validators now, and answer how many were
    compiled.

    Django's validators compile their regular expressions on first use (`_lazy_re_compile`).
    The e-mail validator's domain pattern alone takes about 60 ms of CPU on the 2-vCPU machine.
    Without this, a worker pool process pays for it on the first order it records: the buyer's
    address is validated there. Called in the Celery worker's main process before the pool
    forks, so every pool process starts with the compiled patterns, and in each gunicorn worker
    as it boots. Validators share their patterns: a class's patterns serve all its instances.
    """
    compiled = 0
    seen: set[int] = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            for validator in field.validators:
                holders = [*type(validator).__mro__, validator]
                for holder in holders:
                    for value in vars(holder).values():
                        if isinstance(value, SimpleLazyObject) and id(value) not in seen:
                            seen.add(id(value))
                            if value._wrapped is empty:
                                value._setup()
                                compiled += 1
    return compiled
