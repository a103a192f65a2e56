"""Creating seller accounts and their staff."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from .models import Account, ApiToken, ApiTokenScope, User
from .roles import Capability, Role, require_capability

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
    # What a role may do is decided by accounts.roles; these model permissions only open the admin pages.
    perms = perms | Permission.objects.filter(
        content_type__app_label="accounts",
        codename__in=[
            "view_account",
            "change_account",
            "view_user",
            "add_user",
            "change_user",
            "view_apitoken",
            "add_apitoken",
            "change_apitoken",
            "view_auditentry",
        ],
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
def staff_user_create(
    *, account: Account, username: str, password: str | None, email: str = "", role: str = Role.OWNER, **fields
) -> User:
    """A person who works for `account` and uses the admin and the API.

    The role defaults to owner, what every user could do before roles existed (the first person of
    a shop is its owner); invitations name the role. No password: an unusable one (invitations).
    """
    from billing.gates import Limit, check_limit  # billing builds on accounts: imported late

    check_limit(account, Limit.STAFF_USERS, adding=1)  # the plan's staff users: raises PlanLimitReached
    user = User(username=username, email=email, account=account, is_staff=True, role=role, **fields)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(staff_group_sync())
    return user


def _owners_left(account_id: int, *, without: User) -> int:
    return User.objects.filter(account_id=account_id, role=Role.OWNER, is_active=True).exclude(pk=without.pk).count()


@transaction.atomic
def user_role_change(*, user: User, role: str, by: User) -> User:
    """Gives `user` another role. Only who manages people may; an account always keeps an owner.

    The change is recorded in the audit log (User is registered with django-auditlog).
    """
    require_capability(by, Capability.PEOPLE)
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}: one of {', '.join(Role.values)}."})
    user = User.objects.select_for_update().get(pk=user.pk)
    if not by.is_superuser and user.account_id != by.account_id:
        raise ValidationError({"user": "This person belongs to another account."})
    # Lock the account's owners so two owners demoting each other cannot leave none.
    list(User.objects.select_for_update().filter(account_id=user.account_id, role=Role.OWNER))
    if user.role == Role.OWNER and role != Role.OWNER and _owners_left(user.account_id, without=user) == 0:
        raise ValidationError({"role": "The account needs an owner: make someone else owner first."})
    user.role = role
    user.save(update_fields=["role"])
    return user


def owner_check_kept(*, user: User, new_role: str, new_active: bool) -> None:
    """Raises ValidationError when saving `user` so would leave their account without an active owner."""
    if user.pk is None or user.account_id is None:
        return
    stored = User.objects.filter(pk=user.pk).values("role", "is_active").first()
    if stored is None or stored["role"] != Role.OWNER or not stored["is_active"]:
        return
    if (new_role != Role.OWNER or not new_active) and _owners_left(user.account_id, without=user) == 0:
        raise ValidationError("The account needs an active owner: make someone else owner first.")


def api_token_create(*, user: User, name: str, scope: str = ApiTokenScope.READ) -> tuple[ApiToken, str]:
    """A new API token for `user`. Returns the row and the key: the key is stored only as a digest,
    so this is the one time it can be shown."""
    from .models import api_token_digest

    if scope not in ApiTokenScope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r}: one of {', '.join(ApiTokenScope.values)}."})
    key = ApiToken.new_key()
    token = ApiToken(user=user, name=name, scope=scope, prefix=key[:10], digest=api_token_digest(key))
    token.full_clean()
    token.save()
    return token, key


def api_token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revokes a token (its person's own, or any of the account's for who manages people)."""
    if token.user_id != by.pk:
        require_capability(by, Capability.PEOPLE)
        if not by.is_superuser and token.user.account_id != by.account_id:
            raise ValidationError("This token belongs to another account.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def _unique_username(email: str) -> str:
    base = slugify(email.split("@")[0]) or "user"
    candidate, n = base[:140], 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base[:140]}-{n}"
    return candidate


@transaction.atomic
def user_invite(
    *, account: Account, email: str, role: str, by: User, request, first_name: str = "", last_name: str = ""
) -> User:
    """Invites a colleague: their user is made (no password yet, counted against the plan's staff
    users) and they get an e-mail with a link to choose a password (allauth's password-reset key
    flow, valid ACCOUNTS_INVITATION_DAYS days). Only who manages people may invite."""
    from allauth.account.adapter import get_adapter
    from allauth.account.forms import default_token_generator
    from allauth.account.models import EmailAddress
    from allauth.account.utils import user_pk_to_url_str

    require_capability(by, Capability.PEOPLE)
    if not by.is_superuser and account.pk != by.account_id:
        raise ValidationError("You can only invite people to your own account.")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}: one of {', '.join(Role.values)}."})
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists() or EmailAddress.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "Someone with this e-mail address already has a login."})
    user = staff_user_create(
        account=account,
        username=_unique_username(email),
        password=None,
        email=email,
        role=role,
        first_name=first_name,
        last_name=last_name,
    )
    # Verified: the only way to sign in is the password link sent to this very address.
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    adapter = get_adapter(request)
    key = f"{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}"
    context = {
        "account": account,
        "invited_by": by,
        "role": Role(role).label,
        "invite_url": adapter.get_reset_password_from_key_url(key),
        "user": user,
    }
    # Rendered now, while the request is there (the link's host); sent once the user is committed.
    message = adapter.render_mail("account/email/invitation", email, context)
    transaction.on_commit(message.send)
    return user


@transaction.atomic
def account_sign_up(*, user: User, shop_name: str) -> Account:
    """A new shop from the public sign-up: its account (FREE plan: BILLING_DEFAULT_PLAN applies to an
    account that never subscribed) with `user`, not yet saved, as its owner."""
    base = slugify(shop_name)[:50] or "shop"
    slug, n = base, 1
    while Account.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    account = account_create(name=shop_name, slug=slug)
    user.account = account
    user.role = Role.OWNER
    user.is_staff = True
    return account
