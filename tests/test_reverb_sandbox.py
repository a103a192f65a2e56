"""The loopback Reverb itself: Reverb's rules, webhook deliveries, faults, the log, control endpoints, commands."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command

from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox, SandboxError

HEADERS = {
    "Authorization": f"Bearer {DEFAULT_TOKEN}",
    "Accept-Version": "3.0",
    "Accept": "application/hal+json",
    "Content-Type": "application/hal+json",
}
GUITAR = {
    "sku": "SB-1",
    "make": "Gretsch",
    "model": "White Falcon",
    "price": {"amount": "3500.00", "currency": "USD"},
    "condition": {"uuid": "df268ad1-c462-4ba6-b6db-e007e23922ea"},
    "publish": True,
}


class Receiver:
    """A webhook endpoint that records what it was sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/reverb/secret-token/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def sandbox():
    with ReverbSandbox(page_size=2, max_page_size=2, timeout_delay=0.5) as running:
        yield running


def api(sandbox, method, path, body=None, headers=HEADERS, timeout=2):
    return requests.request(
        method,
        f"{sandbox.base_url}{path}",
        data=json.dumps(body) if body is not None else None,
        headers=headers,
        timeout=timeout,
    )


# --- access and wire format ------------------------------------------------------------


def test_it_requires_the_bearer_token_and_accept_version(sandbox):
    no_token = api(sandbox, "GET", "/my/listings", headers={**HEADERS, "Authorization": "Bearer nope"})
    no_version = api(
        sandbox, "GET", "/my/listings", headers={k: v for k, v in HEADERS.items() if k != "Accept-Version"}
    )

    assert no_token.status_code == 401
    assert set(no_token.json()) == {"message", "errors"}
    assert no_version.status_code == 400
    assert "Accept-Version" in no_version.json()["message"]
    assert [r.authorized for r in sandbox.requests()] == [False, True]


def test_answers_are_hal_json_with_links_pages_and_money(sandbox):
    for n in range(3):
        api(sandbox, "POST", "/listings", {**GUITAR, "sku": f"SB-{n}"})

    page = api(sandbox, "GET", "/my/listings?state=all")

    assert page.headers["Content-Type"].startswith("application/hal+json")
    data = page.json()
    assert (data["total"], data["current_page"], data["total_pages"], len(data["listings"])) == (3, 1, 2, 2)
    assert data["_links"]["next"]["href"] == f"{sandbox.base_url}/my/listings?state=all&page=2"
    listing = data["listings"][0]
    assert listing["price"] == {
        "amount": "3500.00",
        "amount_cents": 350000,
        "currency": "USD",
        "symbol": "$",
        "display": "$3,500.00",
    }
    assert listing["state"] == {"slug": "live", "description": "Live"}
    assert listing["_links"]["self"]["href"] == f"{sandbox.base_url}/listings/{listing['id']}"


def test_a_body_without_a_json_content_type_is_read_as_a_form(sandbox):
    answer = api(sandbox, "POST", "/listings", GUITAR, headers={**HEADERS, "Content-Type": "text/plain"})

    assert answer.status_code == 422
    assert answer.json()["errors"]["make"] == ["can't be blank"]


# --- Reverb's listing rules ------------------------------------------------------------


def test_a_create_without_publish_is_a_draft_and_make_and_model_are_required(sandbox):
    draft = api(sandbox, "POST", "/listings", {**GUITAR, "publish": False}).json()["listing"]
    refused = api(sandbox, "POST", "/listings", {**GUITAR, "make": "", "model": None})

    assert draft["state"]["slug"] == "draft"
    assert refused.status_code == 422
    assert refused.json()["errors"] == {"make": ["can't be blank"], "model": ["can't be blank"]}


def test_brand_new_without_a_upc_stays_a_draft_with_only_a_warning(sandbox):
    brand_new = {**GUITAR, "condition": {"uuid": "7c3f45de-2ae0-4c81-8400-fdb6b1d74890"}}

    answer = api(sandbox, "POST", "/listings", brand_new)

    assert answer.status_code == 201
    assert answer.json()["listing"]["state"]["slug"] == "draft"
    assert "UPC" in answer.json()["warnings"][0]


def test_only_multi_unit_conditions_hold_more_than_one(sandbox):
    used = api(sandbox, "POST", "/listings", {**GUITAR, "has_inventory": True, "inventory": 3})
    b_stock = api(
        sandbox,
        "POST",
        "/listings",
        {
            **GUITAR,
            "condition": {"uuid": "9225283f-60c2-4413-ad18-1f5eba7a856f"},
            "has_inventory": True,
            "inventory": 3,
        },
    )

    assert used.status_code == 422
    assert "more than one" in used.json()["errors"]["inventory"][0]
    assert b_stock.status_code == 201


def test_only_one_video_is_allowed(sandbox):
    answer = api(
        sandbox,
        "POST",
        "/listings",
        {**GUITAR, "videos": [{"link": "https://youtu.be/a"}, {"link": "https://youtu.be/b"}]},
    )

    assert answer.json()["errors"] == {"videos": ["only one video is allowed"]}


def test_inventory_zero_takes_a_listing_off_sale(sandbox):
    used = sandbox.add_external_listing("U-1")
    multi = sandbox.add_external_listing("M-1", condition="brand_new", quantity=3)

    api(sandbox, "PUT", f"/listings/{used['id']}", {"inventory": 0})
    api(sandbox, "PUT", f"/listings/{multi['id']}", {"inventory": 0})

    assert sandbox.listing(used["id"])["state"]["slug"] == "ended"
    assert sandbox.listing(multi["id"])["state"]["slug"] == "sold_out"


def test_a_sold_one_of_a_kind_listing_is_locked(sandbox):
    listing = sandbox.add_external_listing("U-1")
    sandbox.simulate_sale("U-1", deliver_webhook=False)

    answer = api(sandbox, "PUT", f"/listings/{listing['id']}", {"publish": True})

    assert answer.status_code == 422
    assert sandbox.listing(listing["id"])["state"]["slug"] == "sold"


def test_drafts_cannot_be_ended_and_only_drafts_can_be_deleted(sandbox):
    draft = sandbox.add_external_listing("D-1", state="draft")
    live = sandbox.add_external_listing("L-1")

    assert api(sandbox, "PUT", f"/my/listings/{draft['id']}/state/end", {"reason": "not_sold"}).status_code == 422
    assert api(sandbox, "DELETE", f"/listings/{live['id']}").status_code == 400
    assert api(sandbox, "DELETE", f"/listings/{draft['id']}").status_code == 200
    assert sandbox.listing(draft["id"]) is None


def test_ending_answers_an_empty_body_and_refuses_an_unknown_reason(sandbox):
    live = sandbox.add_external_listing("L-1")

    wrong = api(sandbox, "PUT", f"/my/listings/{live['id']}/state/end", {"reason": "sold_elsewhere"})
    ended = api(sandbox, "PUT", f"/my/listings/{live['id']}/state/end", {"reason": "not_sold"})

    assert wrong.status_code == 422
    assert (ended.status_code, ended.content) == (200, b"")
    assert sandbox.listing(live["id"])["state"]["slug"] == "ended"


def test_a_listing_is_found_by_slug_as_well_as_by_id(sandbox):
    listing = sandbox.add_external_listing("L-1")

    assert api(sandbox, "GET", f"/listings/{listing['slug']}").json()["id"] == listing["id"]


# --- sales and webhooks ----------------------------------------------------------------


def test_a_sale_of_a_one_of_a_kind_item_sells_the_listing_and_delivers_orders_create(sandbox, receiver):
    listing = sandbox.add_external_listing("U-1", price="2500")
    registration = api(sandbox, "POST", "/webhooks/registrations", {"url": receiver.url, "topic": "orders/create"})

    order = sandbox.simulate_sale("U-1")

    assert registration.status_code == 201
    assert sandbox.listing(listing["id"])["state"]["slug"] == "sold"
    assert (order["product_id"], order["sku"], order["quantity"], order["status"]) == (listing["id"], "U-1", 1, "paid")
    assert order["total"]["amount"] == "2500.00"
    [(path, headers, body)] = receiver.received
    assert path == "/hooks/reverb/secret-token/"
    assert json.loads(body) == order
    assert headers["Content-Type"] == "application/json"
    assert "X-Reverb-Topic" not in headers  # Reverb documents no topic header
    assert sandbox.deliveries[0].status == 200


def test_a_sale_of_stock_counts_down_and_sells_out(sandbox):
    listing = sandbox.add_external_listing("M-1", condition="brand_new", quantity=3)

    sandbox.simulate_sale("M-1", quantity=2, deliver_webhook=False)
    assert (sandbox.listing(listing["id"])["inventory"], sandbox.listing(listing["id"])["state"]["slug"]) == (1, "live")
    sandbox.simulate_sale("M-1", deliver_webhook=False)
    assert (sandbox.listing(listing["id"])["inventory"], sandbox.listing(listing["id"])["state"]["slug"]) == (
        0,
        "sold_out",
    )


def test_what_is_not_for_sale_cannot_be_bought(sandbox):
    sandbox.add_external_listing("E-1", state="ended")
    sandbox.add_external_listing("U-1")

    with pytest.raises(SandboxError, match="not for sale"):
        sandbox.simulate_sale("E-1")
    with pytest.raises(SandboxError, match="has 1 for sale, not 2"):
        sandbox.simulate_sale("U-1", quantity=2)
    with pytest.raises(SandboxError, match="No listing"):
        sandbox.simulate_sale("NOPE")
    assert sandbox.orders() == []


def test_order_updates_and_redeliveries_reach_the_constructor_urls_with_an_optional_topic_header(receiver):
    with ReverbSandbox(webhook_urls=[receiver.url], topic_header="X-Reverb-Topic") as sandbox:
        sandbox.add_external_listing("U-1")
        order = sandbox.simulate_sale("U-1", status="unpaid")
        sandbox.update_order(order["order_number"], "paid")
        sandbox.redeliver()

    topics = [headers["X-Reverb-Topic"] for _, headers, _ in receiver.received]
    assert topics == ["orders/create", "orders/update", "orders/update"]
    assert receiver.received[1][2] == receiver.received[2][2]  # byte for byte
    assert json.loads(receiver.received[1][2])["status"] == "paid"


def test_a_delivery_to_nowhere_is_recorded_not_raised():
    with ReverbSandbox(webhook_urls=["http://127.0.0.1:9/nothing-listens"], webhook_timeout=0.5) as sandbox:
        sandbox.add_external_listing("U-1")
        sandbox.simulate_sale("U-1")

    [delivery] = sandbox.deliveries
    assert delivery.status is None
    assert delivery.error


# --- faults and the log ----------------------------------------------------------------


def _fault_sequence(seed: int) -> list[str]:
    with ReverbSandbox(seed=seed, error_rate=0.2, rate_limit_rate=0.2, timeout_rate=0.0) as sandbox:
        for _ in range(30):
            api(sandbox, "GET", "/my/account")
        return [r.fault for r in sandbox.requests()]


def test_random_faults_repeat_exactly_for_a_seed():
    first, again, other = _fault_sequence(7), _fault_sequence(7), _fault_sequence(8)

    assert first == again
    assert first != other
    assert {"error", "rate_limit", ""} == set(first)


def test_500_and_429_apply_nothing_and_429_says_when_to_come_back(sandbox):
    sandbox.fail_next("error", method="POST")
    sandbox.fail_next("rate_limit", method="POST")

    failed = api(sandbox, "POST", "/listings", GUITAR)
    limited = api(sandbox, "POST", "/listings", GUITAR)

    assert failed.status_code == 500
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert sandbox.listings() == []
    assert api(sandbox, "POST", "/listings", GUITAR).status_code == 201


def test_a_timeout_applies_the_write_then_answers_too_late(sandbox):
    sandbox.fail_next("timeout", method="POST")

    with pytest.raises(requests.Timeout):
        api(sandbox, "POST", "/listings", GUITAR, timeout=0.2)

    assert len(sandbox.listings(sku="SB-1")) == 1
    assert sandbox.requests()[0].fault == "timeout"


def test_latency_is_added_to_every_api_request(sandbox):
    sandbox.set_faults(latency_ms=120)

    started = time.monotonic()
    api(sandbox, "GET", "/my/account")

    assert time.monotonic() - started >= 0.12


def test_kept_alive_answers_do_not_wait_for_delayed_acks(sandbox):
    session = requests.Session()
    session.get(f"{sandbox.base_url}/my/account", headers=HEADERS, timeout=2)

    started = time.monotonic()
    for _ in range(20):
        session.get(f"{sandbox.base_url}/my/account", headers=HEADERS, timeout=2)

    assert time.monotonic() - started < 0.6  # ~40 ms each with Nagle's algorithm left on


def test_the_log_counts_reads_and_writes_but_not_control_calls(sandbox):
    api(sandbox, "POST", "/listings", GUITAR)
    api(sandbox, "GET", "/my/listings")
    api(sandbox, "GET", "/my/listings?state=all")
    requests.get(f"{sandbox.root_url}/_sandbox/state", timeout=2)

    assert (sandbox.calls(), sandbox.reads, sandbox.writes) == (3, 2, 1)
    assert sandbox.calls(method="GET", path_prefix="/my/listings") == 2
    assert sandbox.requests(method="POST")[0].body == GUITAR
    sandbox.reset_log()
    assert sandbox.calls() == 0


def test_a_stopped_sandbox_answers_nothing_even_on_a_kept_alive_connection():
    session = requests.Session()
    with ReverbSandbox() as sandbox:
        assert session.get(f"{sandbox.base_url}/my/account", headers=HEADERS, timeout=2).status_code == 200
        url = f"{sandbox.base_url}/my/account"

    with pytest.raises(requests.ConnectionError):
        session.get(url, headers=HEADERS, timeout=2)


# --- control endpoints -----------------------------------------------------------------


def test_control_endpoints_drive_a_separately_running_sandbox(sandbox, receiver):
    root = f"{sandbox.root_url}/_sandbox"
    made = requests.post(f"{root}/listings", json={"sku": "C-1", "title": "Vox AC30"}, timeout=2)
    registered = requests.post(f"{root}/webhooks", json={"url": receiver.url}, timeout=2)
    faults = requests.post(
        f"{root}/faults", json={"latency_ms": 1, "next": [{"kind": "error", "method": "PUT"}]}, timeout=2
    )
    sold = requests.post(f"{root}/sales", json={"sku": "C-1"}, timeout=5)
    again = requests.post(f"{root}/sales", json={"sku": "C-1"}, timeout=5)
    state = requests.get(f"{root}/state", timeout=2).json()

    assert (made.status_code, registered.status_code, faults.status_code, sold.status_code) == (201, 201, 200, 201)
    assert faults.json()["latency_ms"] == 1
    assert again.status_code == 409
    assert sold.json()["sku"] == "C-1"
    assert [o["order_number"] for o in state["orders"]] == [sold.json()["order_number"]]
    assert state["listings"][0]["state"]["slug"] == "sold"
    assert state["deliveries"] == [{"url": receiver.url, "topic": "orders/create", "status": 200, "error": ""}]
    assert (
        api(sandbox, "PUT", f"/listings/{made.json()['id']}", {"title": "x"}).status_code == 500
    )  # the scripted fault
    assert requests.get(f"{root}/nothing", timeout=2).status_code == 404


# --- commands --------------------------------------------------------------------------


def test_reverb_simulate_sale_sells_on_a_running_sandbox(sandbox, capsys):
    sandbox.add_external_listing("CMD-1", price="800")

    call_command("reverb_simulate_sale", "--sku", "CMD-1", "--sandbox-url", sandbox.base_url, "--no-webhook")

    [order] = sandbox.orders()
    assert f"Reverb order {order['order_number']}: 1 x CMD-1 for $800.00 (paid)." in capsys.readouterr().out
    with pytest.raises(CommandError, match="refused the sale"):
        call_command("reverb_simulate_sale", "--sku", "CMD-1", "--sandbox-url", sandbox.root_url)


def test_reverb_simulate_sale_says_when_no_sandbox_runs():
    with pytest.raises(CommandError, match="Is reverb_sandbox running"):
        call_command("reverb_simulate_sale", "--sku", "X", "--sandbox-url", "http://127.0.0.1:9")


def test_reverb_sandbox_command_serves_until_terminated():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "reverb_sandbox", "--port", "0"],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        answer = requests.get(f"{base_url}/my/account", headers=HEADERS, timeout=5)
        assert answer.json()["shop_name"] == "Loopback Guitars"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Reverb sandbox stopped." in out


def test_the_sandbox_command_keeps_the_shop_across_restarts(tmp_path):
    """`make run` stopped and started again: the demo shops still hold what they held."""
    state = tmp_path / "reverb.state"

    def serve():
        process = subprocess.Popen(
            [sys.executable, "manage.py", "reverb_sandbox", "--port", "0", "--state-file", str(state)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base_url = process.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
        return process, base_url

    def stop(process):
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)

    first, base_url = serve()
    try:
        body = {
            "sku": "KEEP-1",
            "make": "Fender",
            "model": "Telecaster",
            "title": "Fender Telecaster",
            "condition": {"uuid": "ae4d9114-1bd7-4ec5-a4ba-6653af5ac84d"},
            "price": {"amount": "1200.00", "currency": "USD"},
            "publish": True,
        }
        created = requests.post(f"{base_url}/listings", json=body, headers=HEADERS, timeout=5)
        assert created.status_code in (200, 201), created.text
    finally:
        stop(first)

    second, base_url = serve()
    try:
        found = requests.get(
            f"{base_url}/my/listings", params={"sku": "KEEP-1", "state": "all"}, headers=HEADERS, timeout=5
        )
        assert [listing["sku"] for listing in found.json()["listings"]] == ["KEEP-1"]
    finally:
        stop(second)
