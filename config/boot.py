"""What a web or worker process prepares as it boots, so that its first request or task does not.

A fresh process pays for what Django and the libraries build on first use. Left to the first
sale, that cost lands on the webhook or the task that records it (bench/README.md, issue 14).
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.utils.functional import SimpleLazyObject
from kombu.common import maybe_declare
from kombu.exceptions import OperationalError as BrokerUnreachable

log = logging.getLogger(__name__)


def compile_field_validators() -> int:
    """Compile the patterns of every model field's validators now, and answer how many there are.

    Django's validators compile their regular expressions on first use (`_lazy_re_compile`).
    The e-mail validator's domain pattern alone takes about 60 ms of CPU on the 2-vCPU machine.
    Without this, a worker pool process pays for it on the first order it records: the buyer's
    address is validated there. Called in the Celery worker's main process before the pool
    forks, so every pool process starts with the compiled patterns, and in each gunicorn worker
    as it boots. Validators share their patterns: a class's patterns serve all its instances.
    """
    patterns: dict[int, SimpleLazyObject] = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            for validator in field.validators:
                for holder in (*type(validator).__mro__, validator):
                    for value in vars(holder).values():
                        if isinstance(value, SimpleLazyObject):  # isinstance does not evaluate it
                            patterns[id(value)] = value
    for pattern in patterns.values():
        getattr(pattern, "pattern", None)  # reading an attribute evaluates the lazy object
    return len(patterns)


def connect_the_broker(app, *, timeout: float = 2.0) -> bool:
    """Connect the process's first broker connection now and declare the app's queues on it, and
    answer whether that worked.

    Called as a Celery pool process starts. Otherwise the first task that queues others (a sale
    queueing its ends) connects and declares then: about 30 ms of CPU on the 2-vCPU machine,
    once per pool process. The connection goes back to the app's pool, where the producer pool
    takes it. It is one try of at most `timeout` seconds. A broker that is down must not keep a
    starting pool process from reporting in. Billiard waits 4 s for that, and kombu's own
    retries take longer. On failure the first publish connects as before, with Celery's retries.
    """
    connection = app.pool.acquire(block=True)
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            maybe_declare(queue, channel)
    except (BrokerUnreachable, *connection.connection_errors, *connection.channel_errors) as error:
        log.warning("the broker could not be reached as this process started (%s); its first task connects", error)
        return False
    finally:
        connection.release()
    return True
