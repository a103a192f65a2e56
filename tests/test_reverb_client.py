"""ReverbClient against the loopback Reverb: headers, paging, and a typed error for every failure."""

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from channels_reverb.client import ReverbClient, describe_error, parse_retry_after
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.channels import (
    ListingNotFound,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

LISTING = {
    "sku": "BN-1",
    "make": "Gibson",
    "model": "Les Paul Standard",
    "title": "1959 Les Paul",
    "price": {"amount": "250000.00", "currency": "USD"},
    "condition": {"uuid": "df268ad1-c462-4ba6-b6db-e007e23922ea"},
    "has_inventory": False,
    "inventory": 1,
    "publish": True,
}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def sandbox(clock):
    with ReverbSandbox(page_size=2, max_page_size=2, timeout_delay=2.5, retry_after=7, clock=clock) as running:
        yield running


@pytest.fixture
def client(sandbox):
    return ReverbClient(sandbox.base_url, DEFAULT_TOKEN, timeout=2.0)


# --- wire format -----------------------------------------------------------------------


def test_every_request_carries_reverbs_headers_and_a_json_body(sandbox, client):
    client.create_listing(LISTING)

    request = sandbox.requests()[0]
    assert request.authorized  # Authorization: Bearer <token>
    assert request.headers["accept-version"] == "3.0"
    assert request.headers["accept"] == "application/hal+json"
    assert request.headers["content-type"] == "application/hal+json"
    assert request.body == LISTING


def test_the_token_stays_out_of_reprs_and_error_messages(sandbox):
    secret = "s3cret-token-never-shown"
    client = ReverbClient(sandbox.base_url, secret, timeout=2)

    with pytest.raises(PermanentChannelError) as refused:
        client.get_listing(1)

    assert secret not in repr(client)
    assert secret not in str(refused.value)
    assert secret not in str(refused.value.body)


def test_find_by_sku_searches_every_state_and_matches_the_sku_exactly(sandbox, client):
    sandbox.add_external_listing("BN-1", state="ended")
    sandbox.add_external_listing("BN-10")

    found = client.find_listings_by_sku("BN-1")

    assert [listing["sku"] for listing in found] == ["BN-1"]
    assert sandbox.requests()[-1].query == {"sku": "BN-1", "state": "all"}
    assert client.find_listing_by_sku("NOPE") is None


def test_my_listings_follows_next_links_until_there_are_none(sandbox, client):
    for n in range(5):
        sandbox.add_external_listing(f"P-{n}")

    pages = list(client.my_listings())

    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert [page.current_page for page in pages] == [1, 2, 3]
    assert {page.total for page in pages} == {5}
    assert pages[-1].next_href is None
    assert [r.query.get("page") for r in sandbox.requests(path_prefix="/my/listings")] == [None, "2", "3"]


def test_a_link_to_another_host_is_rerooted_onto_the_clients_own_api(sandbox):
    client = ReverbClient(sandbox.base_url, DEFAULT_TOKEN)

    assert client._url("https://api.reverb.com/api/my/listings?page=2") == f"{sandbox.base_url}/my/listings?page=2"
    assert client._url(f"{sandbox.base_url}/listings/1") == f"{sandbox.base_url}/listings/1"
    assert client._url("/listings/1") == f"{sandbox.base_url}/listings/1"


def test_end_answers_with_an_empty_body_and_unknown_reasons_are_refused_before_any_call(sandbox, client):
    listing = sandbox.add_external_listing("BN-1")

    assert client.end_listing(listing["id"], "not_sold") == {}
    with pytest.raises(ValueError):
        client.end_listing(listing["id"], "sold_elsewhere")
    assert sandbox.calls(method="PUT") == 1


def test_orders_are_read_by_update_date_written_the_way_reverb_takes_it(sandbox, client, clock):
    sandbox.add_external_listing("OLD")
    sandbox.add_external_listing("NEW")
    sandbox.simulate_sale("OLD", deliver_webhook=False)
    clock.now += timedelta(hours=1)
    sandbox.simulate_sale("NEW", deliver_webhook=False)

    pages = list(client.orders_updated_since(datetime(2026, 3, 1, 12, 30, tzinfo=UTC)))

    assert [order["sku"] for page in pages for order in page.items] == ["NEW"]
    assert sandbox.requests()[-1].query == {"updated_start_date": "2026-03-01T12:30:00-00:00"}


def test_order_paging_stops_at_a_page_older_than_since_if_the_filter_is_ignored(sandbox, client, clock, monkeypatch):
    for n in range(6):
        sandbox.add_external_listing(f"S-{n}")
    for n in range(6):  # four old orders, then two new ones; newest first means new ones on page 1
        clock.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(hours=0 if n < 4 else 5, minutes=n)
        sandbox.simulate_sale(f"S-{n}", deliver_webhook=False)
    filtered = sandbox.store.selling_orders
    monkeypatch.setattr(sandbox.store, "selling_orders", lambda q: filtered({"page": q.get("page", "1")}))

    pages = list(client.orders_updated_since(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)))

    assert len(pages) == 2  # page 1 (new), page 2 (all older: stop); page 3 never read
    assert sandbox.calls(path_prefix="/my/orders") == 2


def test_calls_are_counted_as_reads_and_writes(sandbox, client):
    listing = client.create_listing(LISTING).listing
    client.get_listing(listing["id"])
    client.update_listing(listing["id"], {"title": "1959 Les Paul Burst"})

    assert (client.reads, client.writes, client.total_calls) == (1, 2, 3)
    assert dict(client.counts) == {"POST": 1, "GET": 1, "PUT": 1}


# --- typed errors ----------------------------------------------------------------------


def test_validation_errors_carry_reverbs_message_and_field_errors(sandbox, client):
    with pytest.raises(PermanentChannelError) as refused:
        client.create_listing({**LISTING, "make": ""})

    error = refused.value
    assert error.status == 422
    assert not error.transient
    assert "The listing could not be saved." in error.message
    assert "make: can't be blank" in error.message
    assert error.body == {"message": "The listing could not be saved.", "errors": {"make": ["can't be blank"]}}
    assert sandbox.listings() == []


def test_a_bad_token_is_permanent_and_says_what_to_check(sandbox):
    client = ReverbClient(sandbox.base_url, "wrong-token", timeout=2)

    with pytest.raises(PermanentChannelError) as refused:
        client.find_listing_by_sku("BN-1")

    assert refused.value.status == 401
    assert not isinstance(refused.value, ListingNotFound)
    assert "belongs to this environment" in refused.value.message


def test_a_missing_accept_version_is_refused_with_400(sandbox):
    client = ReverbClient(sandbox.base_url, DEFAULT_TOKEN, timeout=2)
    del client.headers["Accept-Version"]

    with pytest.raises(PermanentChannelError) as refused:
        client.account()

    assert refused.value.status == 400
    assert "Accept-Version" in refused.value.message


def test_an_unknown_listing_is_listing_not_found(client):
    with pytest.raises(ListingNotFound) as missing:
        client.get_listing(999)

    assert missing.value.status == 404


def test_an_unknown_order_is_none(client):
    assert client.get_order("999") is None


def test_429_is_rate_limited_with_retry_after_and_nothing_applied(sandbox, client):
    sandbox.fail_next("rate_limit", method="POST")

    with pytest.raises(RateLimited) as limited:
        client.create_listing(LISTING)

    assert limited.value.transient
    assert limited.value.retry_after == 7.0
    assert limited.value.status == 429
    assert sandbox.listings() == []


def test_500_is_transient_and_nothing_applied(sandbox, client):
    sandbox.fail_next("error", method="POST")

    with pytest.raises(TransientChannelError) as failed:
        client.create_listing(LISTING)

    assert failed.value.status == 500
    assert not isinstance(failed.value, RateLimited)
    assert sandbox.listings() == []


def test_a_write_that_times_out_is_transient_applied_and_never_repeated(sandbox, client):
    sandbox.fail_next("timeout", method="POST", path_prefix="/listings")

    with pytest.raises(TransientChannelError) as timed_out:
        client.create_listing(LISTING)

    assert "may have been applied" in timed_out.value.message
    assert timed_out.value.status is None
    assert len(sandbox.listings(sku="BN-1")) == 1  # Reverb did create it
    assert sandbox.calls(method="POST") == 1  # and the client did not try again


def test_no_server_at_all_is_transient():
    with ReverbSandbox() as gone:
        url = gone.base_url
    client = ReverbClient(url, DEFAULT_TOKEN, timeout=1)

    with pytest.raises(TransientChannelError) as unreachable:
        client.account()

    assert "Could not reach Reverb" in unreachable.value.message


class _HtmlPage(BaseHTTPRequestHandler):
    """A proxy or load balancer that answers 200 with an HTML page."""

    def do_GET(self):
        body = b"<html>maintenance</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_2xx_that_is_not_json_is_transient():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ReverbClient(f"http://127.0.0.1:{server.server_port}/api", DEFAULT_TOKEN, timeout=2)
        with pytest.raises(TransientChannelError, match="not JSON"):
            client.account()
    finally:
        server.shutdown()
        server.server_close()


def test_no_token_is_refused_before_any_call():
    with pytest.raises(PermanentChannelError, match="No Reverb API token"):
        ReverbClient("https://api.reverb.com/api", "")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0), ("soon", None), (None, None)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    assert parse_retry_after(value, now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == seconds


def test_error_bodies_of_every_shape_become_one_line():
    assert describe_error(422, {"message": "Invalid", "errors": {"price": ["too low", "not a number"]}}) == (
        "Invalid; price: too low, not a number"
    )
    assert describe_error(400, {"errors": ["a", "b"]}) == "a; b"
    assert describe_error(412, "<html>Precondition</html>") == "<html>Precondition</html>"
    assert describe_error(422, {}, fallback="Unprocessable Entity") == "Unprocessable Entity"
    assert describe_error(403, {"message": "Forbidden"}).startswith("Forbidden; The token lacks a scope")


def test_a_proxy_set_in_the_environment_is_still_used_though_read_once(monkeypatch):
    # Given a proxy in the environment, with the marketplace's host left out for a second shop
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "reverb-sandbox.internal")

    # When clients are made
    proxied = ReverbClient("https://api.reverb.com/api", "tok")
    direct = ReverbClient("https://reverb-sandbox.internal/api", "tok")

    # Then the first goes through the proxy, the second does not (each read the environment once, when made)
    assert isinstance(proxied.http, urllib3.ProxyManager)
    assert proxied.http.proxy.host == "proxy.internal" and proxied.http.proxy.port == 3128
    assert not isinstance(direct.http, urllib3.ProxyManager)
    monkeypatch.delenv("HTTPS_PROXY")
    assert isinstance(proxied.http, urllib3.ProxyManager)  # made with the client, not per call
