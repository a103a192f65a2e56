"""The audit log: who changed what, with before and after values (django-auditlog).

Models are registered in settings (AUDITLOG_INCLUDE_TRACKING_MODELS), so this app names none of
the apps that build on it; saves of those models are logged by auditlog itself. Changes that a
service makes in bulk (`QuerySet.update`, `bulk_update`: delisting, webhook replays) send no
signals, so those services call `audit_changes` for each row they change, in their transaction.
The person comes from the request (accounts.middleware.AuditActorMiddleware); no person means
the system (a worker, beat, a command).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from django.db import models

SECRET_MASK = "••••••"
# Connection fields whose values never reach the log, on whichever channel has them.
CONNECTION_SECRETS = (
    "webhook_token",
    "api_token",
    "client_secret",
    "refresh_token",
    "access_token",
    "verification_token",
    "webhook_secret",
    "webhook_secret_previous",
    "password",
    "consumer_key",
    "consumer_secret",
    "shared_secret",
    "keystring",
    "lwa_client_secret",
    "aws_secret_access_key",
    "grant_nonce",
)
# What pulls and token refreshes change on every run: not a person's change.
CONNECTION_NOISE = ("watermark", "last_pull_at", "token_expires_at", "webhook_secret_changed_at")


def connection_models_register() -> None:
    """Audits every marketplace connection model (channels_*.*Connection and the base), whichever
    channels are installed, with its secrets masked. Called from AccountsConfig.ready()."""
    from auditlog.registry import auditlog
    from django.apps import apps

    for model in apps.get_models():
        label = model._meta.label_lower
        if label == "inventory.channelconnection" or (
            model._meta.app_label.startswith("channels_") and model._meta.model_name.endswith("connection")
        ):
            names = {f.name for f in model._meta.concrete_fields}
            auditlog.unregister(model)
            auditlog.register(
                model,
                exclude_fields=[n for n in CONNECTION_NOISE if n in names],
                mask_fields=[n for n in CONNECTION_SECRETS if n in names],
            )


def mask_secret(value: str) -> str:
    """What the log keeps of a secret: that it was set, never any of its characters."""
    return SECRET_MASK if value else ""


def audit_changes(instance: models.Model, changes: Mapping[str, tuple[object, object]], *, note: str = ""):
    """Writes one audit entry for `instance`: {field: (before, after)} (values as text)."""
    from .models import AuditEntry

    as_text = {name: [_text(before), _text(after)] for name, (before, after) in changes.items()}
    return AuditEntry.objects.log_create(
        instance,
        force_log=True,
        action=AuditEntry.Action.UPDATE,
        changes=as_text,
        additional_data={"note": note} if note else None,
    )


def audit_changes_many(
    instances: Iterable[models.Model], changes: Mapping[str, tuple[object, object]], *, note: str = ""
):
    for instance in instances:
        audit_changes(instance, changes, note=note)


def audit_actor(user):
    """Context in which audit entries name `user` (a command run --as someone); None: the system."""
    if user is None:
        return contextlib.nullcontext()
    from auditlog.context import set_actor

    return set_actor(user)


def _text(value: object) -> str:
    return "None" if value is None else str(value)
