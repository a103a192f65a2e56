"""Connecting Etsy: OAuth 2.0 authorization code with PKCE (S256) and state, from the admin's button
and the API, through the loopback Etsy; tokens refreshed ahead of expiry once for every worker, one
refresh and retry on a 401, and a "Reconnect Etsy" alert when the refresh token is refused."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db_connection
from django.utils import timezone

from channels_etsy import oauth, sync
from channels_etsy.models import EtsyConnection
from channels_etsy.sandbox import DEFAULT_KEYSTRING, DEFAULT_SHARED_SECRET, SHOP_ID, EtsySandbox
from channels_etsy.services import ConnectionTokens, OAuthRefused, etsy_oauth_complete, etsy_oauth_start
from inventory.models import Alert, AlertKind
from tests.etsy_market import connect


@pytest.fixture
def etsy():
    with EtsySandbox() as sandbox:
        yield sandbox


def unconnected(account, etsy: EtsySandbox, **fields) -> EtsyConnection:
    return EtsyConnection.objects.create(
        account=account,
        name="Etsy shop",
        keystring=DEFAULT_KEYSTRING,
        shared_secret=DEFAULT_SHARED_SECRET,
        api_base_url=etsy.base_url,
        authorize_url=etsy.authorize_url,
        token_url=etsy.token_url,
        **fields,
    )


def test_pkce_verifier_and_challenge_follow_rfc_7636():
    # RFC 7636 appendix B's example
    assert (
        oauth.code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    verifiers = {oauth.new_code_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    assert all(43 <= len(v) <= 128 and re.fullmatch(r"[A-Za-z0-9\-._~]+", v) for v in verifiers)
    assert len({oauth.new_state() for _ in range(20)}) == 20


@pytest.mark.django_db
def test_the_authorize_url_asks_for_a_code_with_s256_state_and_the_scopes(account, etsy):
    connection = unconnected(account, etsy)
    url = etsy_oauth_start(connection=connection, redirect_uri="https://shop.example.com/etsy/oauth/callback/")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == etsy.authorize_url
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert query["client_id"] == DEFAULT_KEYSTRING
    assert query["redirect_uri"] == "https://shop.example.com/etsy/oauth/callback/"
    assert set(query["scope"].split()) >= {"listings_r", "listings_w", "transactions_r", "shops_r"}
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 32
    assert DEFAULT_SHARED_SECRET not in url


@pytest.mark.django_db
def test_connect_etsy_from_the_admin_through_the_callback(account, staff, admin_client_for, etsy):
    connection = unconnected(account, etsy)
    client = admin_client_for(staff)
    # When staff press Connect Etsy: off to Etsy's consent page
    start = client.get(f"/etsy/connections/{connection.pk}/connect/")
    assert start.status_code == 302 and start["Location"].startswith(etsy.authorize_url)
    # And Etsy (the shop owner consented) sends them back with a code and the state
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["Location"])
    assert back.path == "/etsy/oauth/callback/"
    done = client.get(f"{back.path}?{back.query}")
    # Then the code was exchanged (the verifier matched the challenge) and the shop filled in
    assert done.status_code == 302 and done["Location"].endswith(
        f"/channels_etsy/etsyconnection/{connection.pk}/change/"
    )
    connection.refresh_from_db()
    assert connection.connected and connection.shop_id == SHOP_ID and connection.etsy_user_id == 77700001
    assert connection.token_expires_at > timezone.now() + timedelta(minutes=50)
    assert etsy.token_calls == [("authorization_code", 200)]
    steps = {step.label: step.ok for step in sync.check(connection).steps}
    assert steps["Token"] and steps["Shop"] and not steps["Shipping profile"]  # no profile set yet: said so
    # And the same state cannot be used twice
    again = client.get(f"{back.path}?{back.query}")
    assert again.status_code == 400 and b"unknown, used or older" in again.content
    # And the change page shows the button, never the tokens
    page = client.get(f"/admin/channels_etsy/etsyconnection/{connection.pk}/change/").content.decode()
    assert "Reconnect Etsy" in page
    assert connection.access_token not in page and connection.refresh_token not in page
    assert DEFAULT_SHARED_SECRET not in page


@pytest.mark.django_db
def test_a_callback_with_a_forged_state_or_another_shops_flow_changes_nothing(
    account, staff, other_staff, admin_client_for, etsy
):
    connection = unconnected(account, etsy)
    url = etsy_oauth_start(connection=connection, redirect_uri="http://testserver/etsy/oauth/callback/")
    state = parse_qs(urlsplit(url).query)["state"][0]
    code = parse_qs(urlsplit(requests.get(url, allow_redirects=False, timeout=5).headers["Location"]).query)["code"][0]
    client = admin_client_for(other_staff)
    assert client.get(f"/etsy/oauth/callback/?code={code}&state=forged").status_code == 400
    refused = client.get(f"/etsy/oauth/callback/?code={code}&state={state}")
    assert refused.status_code == 400 and b"another shop" in refused.content
    connection.refresh_from_db()
    assert not connection.connected and etsy.token_calls == []


@pytest.mark.django_db
def test_a_code_exchanged_with_the_wrong_verifier_is_refused_by_etsy(account, etsy, monkeypatch):
    connection = unconnected(account, etsy)
    url = etsy_oauth_start(connection=connection, redirect_uri="http://testserver/etsy/oauth/callback/")
    back = parse_qs(urlsplit(requests.get(url, allow_redirects=False, timeout=5).headers["Location"]).query)
    monkeypatch.setattr(oauth, "exchange_code", _with_verifier(oauth.exchange_code, "x" * 64))
    with pytest.raises(oauth.PermanentChannelError, match="refused the authorization code"):
        etsy_oauth_complete(state=back["state"][0], code=back["code"][0])
    connection.refresh_from_db()
    assert not connection.connected and etsy.token_calls == [("authorization_code", 400)]
    with pytest.raises(OAuthRefused):
        etsy_oauth_complete(state="nope", code="x")


def _with_verifier(exchange, verifier):
    def call(*args, **kwargs):
        return exchange(*args, **{**kwargs, "verifier": verifier})

    return call


@pytest.mark.django_db
def test_the_api_gives_the_authorize_url_for_the_users_own_connection_only(account, api, other_api, etsy):
    connection = unconnected(account, etsy)
    answer = api.post(f"/api/v1/etsy/connections/{connection.pk}/authorize/")
    assert answer.status_code == 200 and answer.json()["authorize_url"].startswith(etsy.authorize_url)
    assert other_api.post(f"/api/v1/etsy/connections/{connection.pk}/authorize/").status_code == 404


@pytest.mark.django_db
def test_a_token_about_to_expire_is_refreshed_before_the_call(account, etsy):
    connection = connect(account, etsy, token_expires_at=timezone.now() + timedelta(minutes=2))
    old = connection.access_token
    assert sync.client_for(connection).me()["shop_id"] == SHOP_ID
    connection.refresh_from_db()
    assert connection.access_token != old and connection.token_expires_at > timezone.now() + timedelta(minutes=50)
    assert etsy.token_calls == [("refresh_token", 200)]
    assert [r.status for r in etsy.requests()] == [200]  # the call went out once, with the new token


@pytest.mark.django_db
def test_an_expired_token_mid_run_is_refreshed_once_and_the_call_retried(account, etsy):
    connection = connect(account, etsy)
    c = sync.client_for(connection)
    c.me()
    etsy.expire_tokens()  # Etsy says the token expired before we expected
    assert c.me()["user_id"] == 77700001
    assert [r.status for r in etsy.requests()] == [200, 401, 200]
    assert etsy.token_calls == [("refresh_token", 200)]


@pytest.mark.django_db
def test_a_refused_refresh_raises_one_reconnect_alert_and_is_not_hammered(account, etsy):
    connection = connect(account, etsy)
    etsy.expire_tokens()
    etsy.refuse_refresh()
    c = sync.client_for(connection)
    with pytest.raises(oauth.RefreshRefused, match="Reconnect Etsy"):
        c.me()
    with pytest.raises(oauth.RefreshRefused):
        ConnectionTokens(connection.pk).refreshed(connection.access_token)
    assert etsy.token_calls == [("refresh_token", 400)]  # asked once, not again and again
    [alert] = Alert.objects.filter(kind=AlertKind.CONNECTION, acknowledged_at__isnull=True)
    assert alert.title == "Reconnect Etsy: Etsy shop" and "Connect Etsy" in alert.message
    connection.refresh_from_db()
    assert connection.refresh_token  # kept: staff see the connection as it was until they reconnect

    # When staff reconnect: new tokens, the alert is resolved, calls work again
    etsy.refuse_refresh(False)
    url = etsy_oauth_start(connection=connection, redirect_uri="http://testserver/etsy/oauth/callback/")
    back = parse_qs(urlsplit(requests.get(url, allow_redirects=False, timeout=5).headers["Location"]).query)
    etsy_oauth_complete(state=back["state"][0], code=back["code"][0], account_id=account.pk)
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.resolution == "Etsy reconnected."
    assert sync.client_for(connection).me()["shop_id"] == SHOP_ID


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_workers_refreshing_at_once_make_one_refresh(account, etsy):
    connection = connect(account, etsy)
    stale = connection.access_token
    etsy.expire_tokens()
    got: list[str] = []

    def worker():
        try:
            got.append(ConnectionTokens(connection.pk).refreshed(stale))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 6 and len(set(got)) == 1 and stale not in got
    assert etsy.token_calls == [("refresh_token", 200)]


def test_the_sandbox_consent_page_refuses_what_etsy_refuses(etsy):
    base = {"response_type": "code", "client_id": DEFAULT_KEYSTRING, "redirect_uri": "http://x/cb", "scope": "shops_r",
            "state": "s" * 32, "code_challenge": oauth.code_challenge("v" * 64), "code_challenge_method": "S256"}  # fmt: skip
    assert requests.get(etsy.authorize_url, params=base, allow_redirects=False, timeout=5).status_code == 302
    for change in (
        {"code_challenge_method": "plain"},
        {"code_challenge": "short"},
        {"client_id": "other"},
        {"state": ""},
    ):
        answer = requests.get(etsy.authorize_url, params={**base, **change}, allow_redirects=False, timeout=5)
        assert answer.status_code == 400, change


def test_the_sandbox_answers_429_beyond_its_per_second_limit_with_the_headers():
    with EtsySandbox(per_second=3) as etsy:
        headers = {"x-api-key": f"{DEFAULT_KEYSTRING}:{DEFAULT_SHARED_SECRET}"}
        answers = [
            requests.get(f"{etsy.base_url}/v3/application/openapi-ping", headers=headers, timeout=5) for _ in range(10)
        ]
        statuses = [a.status_code for a in answers]
        assert 429 in statuses and statuses[0] == 200
        limited = answers[statuses.index(429)]
        assert limited.headers["Retry-After"] and limited.headers["x-limit-per-second"] == "3"
        assert int(answers[0].headers["x-remaining-today"]) < 100_000
