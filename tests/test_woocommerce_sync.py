"""WooCommerce's contract functions against the loopback shop: publish, revise, end, read, pull, check."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from channels_woocommerce import sync
from channels_woocommerce.models import WooCommerceConnection, WooCommerceListingDetail
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    EndResult,
    ListingPayload,
    PermanentChannelError,
    PublishResult,
    TransientChannelError,
    channel,
)

pytestmark = pytest.mark.django_db

STRAT = ListingPayload(
    sku="WC-1964",
    title="1964 Fender Stratocaster",
    description="All original.\n\nComes with the case.",
    price=Decimal("5000.00"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://img.example.com/strat-1.jpg", "https://img.example.com/strat-2.jpg", "/media/local.jpg"),
)


@pytest.fixture
def shop():
    with WooSandbox() as sandbox:
        yield sandbox
    assert sandbox.refused_by_index() == []  # every request the tests made fits the route index


@pytest.fixture
def connection(account, shop):
    return WooCommerceConnection.objects.create(
        account=account,
        name="Website",
        store_url=shop.store_url,
        consumer_key=DEFAULT_KEY,
        consumer_secret=DEFAULT_SECRET,
        timeout_seconds=1.0,
        category_ids={"Electric Guitars": [17]},
    )


def writes(shop):
    return [(r.method, r.path) for r in shop.requests() if r.is_write]


def test_the_registry_finds_the_channel_with_its_defaults():
    module = channel("woocommerce")
    assert module is sync
    assert (module.NAME, module.LABEL, module.DEFAULT_PRIORITY) == ("woocommerce", "WooCommerce", 60)
    assert module.CONNECTION_MODEL == "channels_woocommerce.WooCommerceConnection"


def test_publish_creates_one_simple_product_and_reads_it_back(connection, shop):
    result = sync.publish(connection, STRAT, None)

    [product] = shop.products(sku="WC-1964")
    assert result == PublishResult(external_id=str(product["id"]), url=product["permalink"], adopted=False)
    assert (product["status"], product["type"], product["regular_price"], product["stock_quantity"]) == (
        "publish",
        "simple",
        "5000.00",
        1,
    )
    assert product["manage_stock"] is True
    assert [(i["src"], i["alt"]) for i in product["images"]] == [
        ("https://img.example.com/strat-1.jpg", "1964 Fender Stratocaster"),
        ("https://img.example.com/strat-2.jpg", "1964 Fender Stratocaster (2)"),
    ]
    assert [c["id"] for c in product["categories"]] == [17]
    assert {a["name"]: a["options"] for a in product["attributes"]}["Brand"] == ["Fender"]
    # The SKU was looked up first, the product created once, then read back by id
    assert [(r.method, r.path) for r in shop.requests() if r.path != "/settings/general/woocommerce_currency"] == [
        ("GET", "/products"),
        ("POST", "/products"),
        ("GET", f"/products/{product['id']}"),
    ]
    [request] = shop.requests("POST", "/products")
    assert request.auth == "oauth"  # plain http: OAuth 1.0a one-legged
    detail = WooCommerceListingDetail.objects.get(connection=connection, sku="WC-1964")
    assert (detail.product_id, detail.status, detail.stock_quantity) == (str(product["id"]), "publish", 1)
