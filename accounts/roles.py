"""Who may do what inside an account: the one permission layer.

A person's role in their account (owner, manager, staff, viewer) grants capabilities; every
interface asks this module, never the role itself: the admin (`AccountScopedMixin`'s
`has_*_permission`, so every admin action declared with `permissions=["change"]`), the API
(`accounts.api.permissions.RoleAllowsAction`, one of the default permission classes) and the
management commands (`require_capability` for a command run `--as` a person).

Platform superusers have every capability. Django's own model permissions still apply on top
(the "Shop staff" group), so a role can only narrow what a user could do before roles existed.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    STAFF = "staff", "Staff"
    VIEWER = "viewer", "Viewer"


class Capability(models.TextChoices):
    VIEW = "view", "See everything in the account"
    CATALOGUE = "catalogue", "Items, photos, stock, listing and delisting, printing, orders, conflicts, alerts"
    OPERATIONS = "operations", "Account and document settings, webhook replays"
    CONNECTIONS = "connections", "Marketplace connections: connect, pause, pull, disconnect"
    BILLING = "billing", "Plan, payment method, cancelling"
    PEOPLE = "people", "Colleagues, invitations, roles and their API tokens"


# The capability table: the whole policy in one place.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Capability.values),
    Role.MANAGER: frozenset(Capability.values) - {Capability.BILLING, Capability.PEOPLE},
    Role.STAFF: frozenset({Capability.VIEW, Capability.CATALOGUE}),
    Role.VIEWER: frozenset({Capability.VIEW}),
}

# What changing a row of a model takes, by "app_label.modelname"; see `capability_for_model`.
MODEL_CAPABILITIES: dict[str, str] = {
    "accounts.account": Capability.OPERATIONS,
    "accounts.user": Capability.PEOPLE,
    "accounts.apitoken": Capability.PEOPLE,  # one's own tokens: see accounts.admin.ApiTokenAdmin
    "inventory.channelconnection": Capability.CONNECTIONS,
    "inventory.webhookevent": Capability.OPERATIONS,
    "inventory.syncrun": Capability.OPERATIONS,
    "documents.documentsettings": Capability.OPERATIONS,
    "auditlog.logentry": Capability.PEOPLE,
}
APP_CAPABILITIES: dict[str, str] = {
    "inventory": Capability.CATALOGUE,
    "documents": Capability.CATALOGUE,
    "billing": Capability.BILLING,
    "accounts": Capability.PEOPLE,
}


def capability_for_model(model) -> str:
    """The capability that adding, changing or deleting rows of `model` (or acting on them) takes.

    Marketplace apps (channels_*) follow one rule so a new channel needs no entry here: their
    connection models are connections, everything else they hold is catalogue detail. Models of
    platform apps (celery beat schedules...) fall back to PEOPLE, the owner's, as the safe side.
    """
    label = model._meta.label_lower
    if label in MODEL_CAPABILITIES:
        return MODEL_CAPABILITIES[label]
    app_label = model._meta.app_label
    if app_label.startswith("channels_"):
        return Capability.CONNECTIONS if model._meta.model_name.endswith("connection") else Capability.CATALOGUE
    return APP_CAPABILITIES.get(app_label, Capability.PEOPLE)


def role_of(user) -> str | None:
    if not (user and user.is_authenticated):
        return None
    return getattr(user, "role", None)


def capabilities_of(user) -> frozenset[str]:
    """Everything `user` may do: all for platform superusers, their role's otherwise."""
    if not (user and user.is_authenticated and user.is_active):
        return frozenset()
    if user.is_superuser:
        return frozenset(Capability.values)
    if user.account_id is None:
        return frozenset()
    return ROLE_CAPABILITIES.get(user.role, frozenset())


def has_capability(user, capability: str) -> bool:
    return capability in capabilities_of(user)


def refusal_message(user, capability: str) -> str:
    role = Role(user.role).label if getattr(user, "role", None) in Role.values else "your role"
    allowed = [Role(r).label.lower() for r, caps in ROLE_CAPABILITIES.items() if capability in caps]
    return (
        f"A {role.lower()} may not do this ({Capability(capability).label.lower()}); "
        f"it takes the role {' or '.join(allowed)}: ask the account owner."
    )


def require_capability(user, capability: str) -> None:
    """Raises PermissionDenied, saying which role it takes, unless `user` has `capability`."""
    if not has_capability(user, capability):
        raise PermissionDenied(refusal_message(user, capability))


def roles_user_may_grant(user) -> list[str]:
    """Roles `user` may give a colleague: any for an owner (or a superuser), none otherwise."""
    return list(Role.values) if has_capability(user, Capability.PEOPLE) else []


def command_person(*, username: str | None, account, capability: str):
    """The person a management command acts as (`--as USERNAME`), checked against the same table.

    Without --as a command acts as the platform operator (who has the shell) and None is returned;
    with it the person must belong to `account` and their role must allow `capability`, and the
    change is recorded as theirs. Raises CommandError saying what is wrong.
    """
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r}.")
    if not user.is_superuser and user.account_id != account.pk:
        raise CommandError(f"{username} does not work for {account}.")
    if not has_capability(user, capability):
        raise CommandError(refusal_message(user, capability))
    return user
