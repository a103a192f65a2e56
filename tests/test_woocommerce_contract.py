"""What the WooCommerce client sends, checked against the official route index (contracts/woocommerce).

The index (GET /wp-json/wc/v3 of WooCommerce 3.5, from the official docs repository) lists each
route's methods and the type, enum and required flag of every argument; it has no response
schemas. So:
- a whole working session of the channel (publish, adopt, revise, end, relist, bulk, pull,
  webhooks, check) runs against the loopback shop, and every request it made is validated again
  here, straight from the contract file, for route, method, argument names, types and enums;
- the validator is shown to refuse what the index does not allow (so these checks can fail);
- the enums we hard-code equal the index's.
A missing contract file fails these tests; it never skips them.
"""

import json
from dataclasses import replace
from decimal import Decimal

import pytest
import requests

from channels_woocommerce import mappers, sync
from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, RouteIndex, WooSandbox
from inventory.channels import END_SOLD_ELSEWHERE
from tests.contracts import contract_path
from tests.test_woocommerce_sync import STRAT

pytestmark = pytest.mark.django_db


INDEX = contract_path("woocommerce", "wc-v3-route-index.json")


@pytest.fixture(scope="module")
def index() -> RouteIndex:
    return RouteIndex(json.loads(INDEX.read_text()))


def revalidate(index: RouteIndex, recorded) -> list[str]:
    problems = []
    for request in recorded:
        matched = index.match(request.method, "/wc/v3" + request.path)
        if not isinstance(matched, tuple):
            problems.append(f"{request.method} {request.path}: {matched.message}")
            continue
        route, _path_args, args = matched
        query = {k: v for k, v in request.query.items() if v != "***"}
        problem = index.check(request.method, route, args, query, request.body)
        if problem is not None:
            problems.append(f"{request.method} {request.path}: {problem.message} {problem.params}")
    return problems


def test_the_route_index_is_the_official_one(index):
    assert len(index.document["routes"]) == 68
    assert index.document["namespace"] == "wc/v3"


def test_a_whole_session_sends_only_what_the_route_index_allows(account, index, live_server, transactional_db):
    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(
            account=account,
            name="Website",
            store_url=shop.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
            category_ids={"Electric Guitars": [17]},
        )
        sync.check(connection)
        sync.register_webhooks(connection, live_server.url)
        product_id = sync.publish(connection, STRAT, None).external_id
        sync.publish(connection, STRAT, product_id)
        sync.revise(
            connection,
            product_id,
            replace(STRAT, title="New", price=Decimal("4900"), quantity=2),
            frozenset({"title", "price", "quantity", "photos", "brand", "category", "description"}),
        )
        sync.end(connection, product_id, END_SOLD_ELSEWHERE)
        sync.publish(connection, STRAT, product_id)
        sync.find_listing(connection, "WC-1964")
        list(sync.read_all_listings(connection))
        shop.add_external_product("DUP-0")
        sync.publish_many(connection, [(replace(STRAT, sku=f"DUP-{n}"), None) for n in range(3)])
        shop.simulate_sale("WC-1964", deliver_webhook=False)
        watermark = sync.pull(connection, None).watermark
        sync.pull(connection, watermark, full_scan=True)
        sync.order_shipped(connection, str(shop.orders()[0]["id"]), carrier="UPS", tracking_number="1Z999")
        sync.check(connection)

        recorded = shop.requests()
        assert len(recorded) > 25
        assert shop.refused_by_index() == []
        assert revalidate(index, recorded) == []
        assert {r.path.split("/")[1] if r.path else "" for r in recorded} >= {
            "products",
            "orders",
            "webhooks",
            "settings",
        }


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "code"),
    [
        ("GET", "/wp-json/wc/v3/products", {"colour": "red"}, None, "rest_invalid_param"),
        ("GET", "/wp-json/wc/v3/products", {"per_page": "ten"}, None, "rest_invalid_param"),
        ("GET", "/wp-json/wc/v3/products", {"status": "live"}, None, "rest_invalid_param"),
        ("GET", "/wp-json/wc/v3/orders", {"status": "paid"}, None, "rest_invalid_param"),
        ("POST", "/wp-json/wc/v3/products", {}, {"name": "A", "price": "10"}, "rest_invalid_param"),
        ("POST", "/wp-json/wc/v3/products", {}, {"name": "A", "regular_price": 10}, "rest_invalid_param"),
        (
            "POST",
            "/wp-json/wc/v3/products",
            {},
            {"name": "A", "categories": [{"id": 1, "name": "x"}]},
            "rest_invalid_param",
        ),
        ("POST", "/wp-json/wc/v3/products", {}, {"name": "A", "stock_quantity": "3"}, "rest_invalid_param"),
        ("POST", "/wp-json/wc/v3/products/batch", {}, {"create": [{"regular_price": 5}]}, "rest_invalid_param"),
        ("POST", "/wp-json/wc/v3/products/batch", {}, {"update": [{"name": "no id"}]}, "rest_invalid_param"),
        (
            "POST",
            "/wp-json/wc/v3/webhooks",
            {},
            {"topic": "order.created", "secret": "s"},
            "rest_missing_callback_param",
        ),
        ("DELETE", "/wp-json/wc/v3/products/batch", {}, None, "rest_no_route"),
        ("GET", "/wp-json/wc/v3/listings", {}, None, "rest_no_route"),
    ],
)
def test_the_shop_refuses_what_the_route_index_does_not_allow(method, path, query, body, code):
    with WooSandbox(tls=True) as shop:
        answer = requests.request(
            method, shop.store_url + path, params=query, json=body, auth=(DEFAULT_KEY, DEFAULT_SECRET), timeout=5
        )
        assert answer.json()["code"] == code
        assert answer.status_code in (400, 404)
        assert answer.json()["data"]["status"] == answer.status_code
        assert shop.products() == []
        assert len(shop.refused_by_index()) == 1


def test_our_enums_are_the_index_s(index):
    routes = index.document["routes"]
    order_list = routes["/wc/v3/orders"]["endpoints"][0]["args"]["status"]["enum"]
    assert set(mappers.ORDER_STATUSES) == set(order_list) - {"any"}
    product_post = routes["/wc/v3/products"]["endpoints"][1]["args"]
    assert set(mappers.PRODUCT_STATUSES) == set(product_post["status"]["enum"])
    assert mappers.end_body()["status"] in product_post["status"]["enum"]
    assert mappers.product_body(STRAT)["type"] in product_post["type"]["enum"]
    assert mappers.product_body(STRAT)["backorders"] in product_post["backorders"]["enum"]
    webhook_post = routes["/wc/v3/webhooks"]["endpoints"][1]["args"]
    assert {"topic", "secret", "delivery_url"} == {n for n, a in webhook_post.items() if a.get("required")}
    assert set(sync.WEBHOOK_TOPICS) <= {
        f"{r}.{e}" for r in ("order", "product") for e in ("created", "updated", "deleted")
    }


def test_every_field_of_a_product_body_is_declared_with_its_type(index):
    product_post = index.document["routes"]["/wc/v3/products"]["endpoints"][1]["args"]
    body = mappers.product_body(replace(STRAT, seo_description="Short"), category_ids=[17])
    assert set(body) <= set(product_post)
    route, _, args = index.match("POST", "/wc/v3/products")
    assert index.check("POST", route, args, {}, body) is None
    assert isinstance(body["regular_price"], str) and isinstance(body["stock_quantity"], int)
