"""The loopback WooCommerce shop itself: what it holds and sends must be what a real shop would."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from channels_woocommerce import webhooks
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox, php_json


class Receiver:
    """A delivery URL answering the given statuses in turn (then 200), keeping what it got."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.got: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_creating_a_webhook_pings_first_then_deliveries_are_signed_over_php_json(receiver):
    hook_url = receiver()
    with WooSandbox() as shop:
        shop.subscribe(hook_url.url, "order.created", "s3cret")
        shop.add_external_product("P-1", quantity=1)
        order = shop.simulate_sale("P-1")
    (ping_headers, ping_body), (headers, body) = hook_url.got
    assert (ping_body, ping_headers["content-type"]) == (b"webhook_id=1", "application/x-www-form-urlencoded")
    assert "x-wc-webhook-signature" not in ping_headers
    assert headers["x-wc-webhook-topic"] == "order.created" and headers["x-wc-webhook-id"] == "1"
    assert b"\\/" in body and json.loads(body)["id"] == order["id"]
    webhooks.verify("s3cret", headers, body)  # signed over exactly these bytes
    assert body == php_json(json.loads(body))


def test_a_failed_delivery_is_retried_with_a_new_delivery_id_and_duplicates_keep_theirs(receiver):
    hook_url = receiver(statuses=[200, 500, 500])  # the ping, then two failures
    with WooSandbox(webhook_retries=3) as shop:
        shop.subscribe(hook_url.url, "product.updated", "s")
        shop.add_external_product("P-1")
        done = shop.edit_product("P-1", name="Renamed")
        assert done["name"] == "Renamed"
        tries = [d for d in shop.deliveries if d.topic == "product.updated"]
        assert [d.status for d in tries] == [500, 500, 200]
        assert len({d.delivery_id for d in tries}) == 3
        assert len({d.body for d in tries}) == 1
        shop.set_faults(duplicate_rate=1.0, webhook_retries=0)
        shop.edit_product("P-1", name="Again")
        twice = [d for d in shop.deliveries if d.topic == "product.updated"][3:]
        assert len(twice) == 2 and twice[0].delivery_id == twice[1].delivery_id and twice[0].body == twice[1].body


def test_more_than_five_failures_in_a_row_disable_the_webhook(receiver):
    hook_url = receiver(statuses=[200] + [500] * 10)
    with WooSandbox() as shop:
        hook = shop.subscribe(hook_url.url, "product.updated", "s")
        shop.add_external_product("P-1")
        for n in range(7):
            shop.edit_product("P-1", name=f"n{n}")
        [state] = shop.webhooks()
        assert state["status"] == "disabled"
        # five failures leave it active; the sixth disables it; nothing is sent after that
        assert len([d for d in shop.deliveries if d.topic == "product.updated"]) == 6
        assert hook["id"] == state["id"]


def test_paging_headers_and_limits_are_wordpress_s():
    with WooSandbox(tls=True) as shop:
        for n in range(25):
            shop.add_external_product(f"P-{n}")
        auth = (DEFAULT_KEY, DEFAULT_SECRET)
        page = requests.get(f"{shop.store_url}/wp-json/wc/v3/products", params={"per_page": 10, "page": 2}, auth=auth)
        assert (page.headers["X-WP-Total"], page.headers["X-WP-TotalPages"], len(page.json())) == ("25", "3", 10)
        assert 'rel="next"' in page.headers["Link"] and 'rel="prev"' in page.headers["Link"]
        too_many = requests.get(f"{shop.store_url}/wp-json/wc/v3/products", params={"per_page": 101}, auth=auth)
        assert (too_many.status_code, too_many.json()["code"]) == (400, "rest_invalid_param")
        big = requests.post(
            f"{shop.store_url}/wp-json/wc/v3/products/batch",
            json={"create": [{"name": f"n{n}"} for n in range(101)]},
            auth=auth,
        )
        assert (big.status_code, big.json()["code"]) == (413, "woocommerce_rest_request_entity_too_large")
        assert len(shop.products()) == 25


def test_a_batch_applies_the_good_objects_and_returns_each_bad_ones_error():
    with WooSandbox(tls=True) as shop:
        shop.add_external_product("TAKEN")
        answer = requests.post(
            f"{shop.store_url}/wp-json/wc/v3/products/batch",
            json={"create": [{"name": "a", "sku": "NEW"}, {"name": "b", "sku": "TAKEN"}], "update": [{"id": 999}]},
            auth=(DEFAULT_KEY, DEFAULT_SECRET),
        ).json()
        assert answer["create"][0]["sku"] == "NEW"
        assert answer["create"][1] == {
            "id": 0,
            "error": {
                "code": "product_invalid_sku",
                "message": "Invalid or duplicated SKU.",
                "data": {"status": 400, "resource_id": 0},
            },
        }
        assert answer["update"][0]["error"]["code"] == "woocommerce_rest_product_invalid_id"
        assert sorted(p["sku"] for p in shop.products()) == ["NEW", "TAKEN"]


def test_a_missing_dates_are_gmt_reads_the_time_in_the_sites_timezone_and_misses_changes():
    # The sandbox's site runs on UTC-5: a GMT time sent without dates_are_gmt is read 5 hours later
    from datetime import datetime, timedelta

    with WooSandbox(tls=True) as shop:
        shop.add_external_product("P-1")
        changed = datetime.fromisoformat(shop.products()[0]["date_modified_gmt"])
        half_an_hour_before = (changed - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
        auth = (DEFAULT_KEY, DEFAULT_SECRET)
        url = f"{shop.store_url}/wp-json/wc/v3/products"
        as_gmt = requests.get(url, params={"modified_after": half_an_hour_before, "dates_are_gmt": "true"}, auth=auth)
        as_local = requests.get(url, params={"modified_after": half_an_hour_before}, auth=auth)
        assert (len(as_gmt.json()), len(as_local.json())) == (1, 0)
        product = shop.products()[0]
        local = datetime.fromisoformat(product["date_modified"])
        assert changed - local == timedelta(hours=5)


def test_the_demo_shop_keeps_its_products_orders_and_webhooks_across_a_restart(tmp_path):
    state = str(tmp_path / "woo.state")
    with WooSandbox(state_file=state, tls=True) as shop:
        requests.post(
            f"{shop.store_url}/wp-json/wc/v3/products",
            json={"name": "Kept", "sku": "KEEP-1", "regular_price": "10.00", "manage_stock": True, "stock_quantity": 2},
            auth=(DEFAULT_KEY, DEFAULT_SECRET),
            timeout=5,
        )
        shop.store.create_webhook({"topic": "order.created", "delivery_url": "http://127.0.0.1:1/x", "secret": "s"})
        requests.post(f"{shop.store_url}/_sandbox/sales", json={"sku": "KEEP-1", "deliver_webhook": False}, timeout=5)
    with WooSandbox(state_file=state) as again:
        [product] = again.products()
        assert (product["sku"], product["stock_quantity"]) == ("KEEP-1", 1)
        assert [o["line_items"][0]["sku"] for o in again.orders()] == ["KEEP-1"]
        assert [h["topic"] for h in again.webhooks()] == ["order.created"]
        made = again.add_external_product("NEXT")
        assert made["id"] == product["id"] + 1  # ids go on, never reused
