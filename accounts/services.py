"""Creating seller accounts and their staff."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.text import slugify

from .models import Account, User

STAFF_GROUP = "Shop staff"
# Apps whose models shop staff work with in the admin: the catalogue, documents, and every
# marketplace app (channels_*), whichever are installed.
BASE_STAFF_APP_LABELS = ("inventory", "documents")


def staff_app_labels() -> tuple[str, ...]:
    from django.apps import apps

    channel_apps = sorted(config.label for config in apps.get_app_configs() if config.label.startswith("channels_"))
    return (*BASE_STAFF_APP_LABELS, *channel_apps)


def staff_group_sync() -> Group:
    """The "Shop staff" group with every permission on the shop's own apps (re-run after new models)."""
    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    perms = Permission.objects.filter(content_type__app_label__in=staff_app_labels())
    perms = perms | Permission.objects.filter(
        content_type__app_label="accounts", codename__in=["view_account", "view_user"]
    )
    # Staff may change their account's plan and payment method (billing page and API).
    perms = perms | Permission.objects.filter(content_type__app_label="billing", codename="manage_billing")
    group.permissions.set(perms)
    return group


@transaction.atomic
def account_create(*, name: str, slug: str = "", default_currency: str = "USD") -> Account:
    """A new seller business."""
    account = Account(name=name, slug=slug or slugify(name), default_currency=default_currency)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def staff_user_create(*, account: Account, username: str, password: str, email: str = "") -> User:
    """A person who works for `account` and uses the admin and the API."""
    from billing.gates import Limit, check_limit  # billing builds on accounts: imported late

    check_limit(account, Limit.STAFF_USERS, adding=1)  # the plan's staff users: raises PlanLimitReached
    user = User(username=username, email=email, account=account, is_staff=True)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(staff_group_sync())
    return user
