"""Onboarding without a shell: a shop signs up, confirms its e-mail, resets a password, invites staff."""

import re

import pytest
from django.core import mail

from accounts.models import Account, User
from accounts.roles import Role
from billing.models import Subscription

pytestmark = pytest.mark.django_db

PASSWORD = "Tr0ub4dor&3-long-enough"


def _link(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def _sign_up(client, **overrides):
    data = {
        "shop_name": "Fuzz Face Pedals",
        "email": "ana@fuzzface.example",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    return client.post("/accounts/signup/", {**data, **overrides})


def test_a_shop_signs_up_confirms_its_email_and_lands_in_its_own_back_office_on_free(client, settings):
    settings.BILLING_DEFAULT_PLAN = "admin"  # a single-shop install's default must not leak to new shops

    response = _sign_up(client)

    assert response.status_code == 302
    user = User.objects.get(email="ana@fuzzface.example")
    assert user.account.name == "Fuzz Face Pedals"
    assert user.account.slug == "fuzz-face-pedals"
    assert user.role == Role.OWNER and user.is_staff and not user.is_superuser
    assert Subscription.objects.get(account=user.account).plan.code == "free"
    # Not in before the address is confirmed.
    assert client.get("/admin/").status_code == 302
    assert len(mail.outbox) == 1
    confirm = _link(mail.outbox[0])
    assert "/accounts/confirm-email/" in confirm

    response = client.post(confirm)

    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/inventory/item/").status_code == 200


def test_sign_up_refuses_a_taken_email_and_a_weak_password(client, staff):
    staff.email = "alice@bluenote.example"
    staff.save()
    _sign_up(client, email="alice@bluenote.example")
    _sign_up(client, email="new@shop.example", password1="password", password2="password")
    assert Account.objects.count() == 1  # only the fixture's
    assert not User.objects.filter(email="new@shop.example").exists()


def test_sign_up_can_be_switched_off_for_a_single_shop_install(client, settings):
    settings.ACCOUNTS_SIGNUP_OPEN = False

    page = client.get("/accounts/signup/")
    _sign_up(client)

    assert "Sign Up Closed" in page.content.decode() or "closed" in page.content.decode().lower()
    assert not User.objects.filter(email="ana@fuzzface.example").exists()
    assert "Open a shop" not in client.get("/accounts/login/").content.decode()


def test_a_forgotten_password_is_reset_by_email_link(client, staff):
    from allauth.account.models import EmailAddress

    staff.email = "alice@bluenote.example"
    staff.save()
    EmailAddress.objects.create(user=staff, email=staff.email, primary=True, verified=True)

    client.post("/accounts/password/reset/", {"email": "alice@bluenote.example"})
    link = _link(mail.outbox[-1])
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"password1": PASSWORD, "password2": PASSWORD})

    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


def test_the_admin_has_a_forgotten_password_link():
    from django.test import Client

    page = Client().get("/admin/login/")
    assert 'href="/admin/password_reset/"' in page.content.decode()
    assert Client().get("/admin/password_reset/").url == "/accounts/password/reset/"


def test_an_owner_invites_a_colleague_who_chooses_a_password_and_gets_the_role(
    client, staff, account, django_capture_on_commit_callbacks
):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/user/invite/", {"email": "Bob@BlueNote.example", "role": "staff", "first_name": "Bob"}
        )

    assert response.status_code == 302
    bob = User.objects.get(email="bob@bluenote.example")
    assert bob.account == account and bob.role == Role.STAFF and not bob.has_usable_password()
    invitation = mail.outbox[-1]
    assert invitation.to == ["bob@bluenote.example"]
    assert "invited you to Blue Note Guitars" in invitation.subject
    assert "as Staff" in invitation.body

    client.logout()
    page = client.get(_link(invitation), follow=True)
    response = client.post(page.redirect_chain[-1][0], {"password1": PASSWORD, "password2": PASSWORD})

    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/inventory/item/").status_code == 200  # signed in, as staff
    assert client.get("/admin/accounts/user/invite/").status_code == 403


def test_an_invitation_link_works_once(client, staff, django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/accounts/user/invite/", {"email": "bob@bluenote.example", "role": "viewer"})
    link = _link(mail.outbox[-1])
    client.logout()
    page = client.get(link, follow=True)
    client.post(page.redirect_chain[-1][0], {"password1": PASSWORD, "password2": PASSWORD})
    client.logout()

    again = client.get(link, follow=True)

    assert "password1" not in again.content.decode()


def test_only_an_owner_invites_and_an_address_with_a_login_is_refused(
    client, account, staff, django_capture_on_commit_callbacks
):
    from accounts.services import staff_user_create

    manager = staff_user_create(account=account, username="m", password=PASSWORD, role=Role.MANAGER)
    client.force_login(manager)
    assert client.post("/admin/accounts/user/invite/", {"email": "x@y.example", "role": "staff"}).status_code == 403

    client.force_login(staff)
    staff.email = "alice@bluenote.example"
    staff.save()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/admin/accounts/user/invite/", {"email": "alice@bluenote.example", "role": "staff"})
    assert "already has a login" in page.content.decode()
    assert not mail.outbox
