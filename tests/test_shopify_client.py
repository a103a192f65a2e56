"""The Shopify client against the loopback store: auth, typed errors, cost pacing, THROTTLED retries.

And the sandbox itself: it refuses what Shopify's schema refuses, and charges a leaky bucket.
"""

import pytest
import requests

from channels_shopify.client import CostBucket, QueryCost, ShopifyClient, bucket_for
from channels_shopify.sandbox import DEFAULT_TOKEN, LOCATION_ID, ShopifySandbox
from inventory.channels import PermanentChannelError, RateLimited, TransientChannelError

CHECK = {"locationId": LOCATION_ID, "withLocation": True}


@pytest.fixture
def shop():
    with ShopifySandbox() as sandbox:
        yield sandbox


def client_for(sandbox, *, token=DEFAULT_TOKEN, sleeps=None, **kwargs):
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return ShopifyClient(
        sandbox.endpoint, token, shop_key=f"test-{id(sandbox)}", bucket=CostBucket(), sleep=sleep, **kwargs
    )


def test_the_token_goes_in_its_header_and_never_in_reprs(shop):
    client = client_for(shop)
    assert client.execute("ShopCheck", CHECK)["shop"]["myshopifyDomain"] == shop.store.shop_domain
    assert DEFAULT_TOKEN not in repr(client)
    [request] = shop.requests()
    assert (request.operation, request.authorized, request.status) == ("ShopCheck", True, 200)


def test_a_wrong_token_is_a_permanent_error_in_plain_words(shop):
    with pytest.raises(PermanentChannelError) as refused:
        client_for(shop, token="shpat_wrong").execute("ShopCheck", CHECK)
    assert refused.value.status == 401
    assert "refused the access token" in refused.value.message


@pytest.mark.parametrize(
    ("status", "words"),
    [("402", "frozen"), ("403", "scope"), ("404", "No such store or API version"), ("423", "locked")],
)
def test_http_refusals_are_permanent_with_what_to_do(shop, status, words):
    shop.fail_next(status)
    with pytest.raises(PermanentChannelError) as refused:
        client_for(shop).execute("ShopCheck", CHECK)
    assert refused.value.status == int(status)
    assert words in refused.value.message


def test_server_errors_and_timeouts_are_transient_and_a_timed_out_write_says_it_may_have_landed(shop):
    shop.fail_next("error")
    with pytest.raises(TransientChannelError) as failed:
        client_for(shop).execute("ShopCheck", CHECK)
    assert failed.value.status == 500
    shop.set_faults(timeout_delay=0.5)
    shop.fail_next("timeout", operation="WebhookSubscriptionCreate")
    with pytest.raises(TransientChannelError) as late:
        client_for(shop, timeout=0.2).execute(
            "WebhookSubscriptionCreate",
            {"topic": "ORDERS_CREATE", "webhookSubscription": {"callbackUrl": "https://x.example/h", "format": "JSON"}},
        )
    assert "may have been applied" in late.value.message
    assert len(shop.store.subscriptions) == 1  # it was applied


def test_a_stopped_shop_is_transient():
    sandbox = ShopifySandbox().start()
    endpoint = sandbox.endpoint
    sandbox.stop()
    with pytest.raises(TransientChannelError):
        ShopifyClient(endpoint, DEFAULT_TOKEN, shop_key="gone", bucket=CostBucket()).execute("ShopCheck", CHECK)


def test_every_answer_carries_shopifys_cost_and_the_bucket_follows_it(shop):
    client = client_for(shop)
    client.execute("ShopCheck", CHECK)
    [request] = shop.requests()
    assert request.requested_cost > 0 and 0 < request.actual_cost <= request.requested_cost
    assert client.bucket.maximum == 2000 and client.bucket.restore_rate == 100
    assert client.points_spent == request.actual_cost


def test_throttled_calls_wait_what_shopify_says_and_are_retried(shop):
    sleeps = []
    client = client_for(shop, sleeps=sleeps)
    shop.fail_next("throttle", operation="ShopCheck", times=2)
    assert client.execute("ShopCheck", CHECK)["shop"]
    assert client.throttled == 2
    assert [r.throttled for r in shop.requests()] == [True, True, False]
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_a_throttle_longer_than_the_client_waits_becomes_rate_limited_for_the_engine():
    with ShopifySandbox(bucket_size=50, restore_rate=1) as shop:
        client = client_for(shop, max_throttle_wait=1.0)
        shop.bucket.take(45)  # another app spent most of the bucket
        with pytest.raises(RateLimited) as limited:
            client.execute("Changes", {"first": 1, "ordersQuery": "", "productsQuery": None, "locationId": LOCATION_ID})
        assert limited.value.retry_after > 1.0
    # a document asking for more than 1,000 points is refused outright, as Shopify does
    with ShopifySandbox() as shop:
        answer = requests.post(
            shop.endpoint,
            json={"query": "{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }"},
            headers={"X-Shopify-Access-Token": DEFAULT_TOKEN},
            timeout=5,
        ).json()
        assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_pacing_waits_before_the_bucket_runs_dry():
    bucket = CostBucket(clock=lambda: 100.0)
    bucket.observe(QueryCost(requested=10, actual=5, maximum=50, available=12, restore_rate=10), booked=0)
    assert bucket.reserve(10) == 0.0  # 12 available
    assert bucket.reserve(10) == pytest.approx(0.8)  # 2 left, 8 more needed at 10/s
    # Shopify's figure counts only what it answered: calls booked and not answered yet are still owed
    bucket.observe(QueryCost(requested=10, actual=5, maximum=50, available=30, restore_rate=10), booked=10)
    assert bucket.available == 20  # 30 less the second call, still in flight
    other = CostBucket()
    assert other.reserve(10) == 0.0  # another shop knows nothing of this one's bucket
    assert bucket_for("a.myshopify.com") is bucket_for("a.myshopify.com")
    assert bucket_for("a.myshopify.com") is not bucket_for("b.myshopify.com")


def post(shop, query, variables=None):
    return requests.post(
        shop.endpoint,
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": DEFAULT_TOKEN},
        timeout=5,
    ).json()


def test_the_sandbox_refuses_what_the_schema_refuses_and_applies_nothing(shop):
    unknown = post(shop, "{ shop { name bogusField } }")
    assert "Cannot query field 'bogusField' on type 'Shop'." in unknown["errors"][0]["message"]
    wrong_type = post(shop, '{ products(first: "ten") { nodes { id } } }')
    assert "Int cannot represent" in wrong_type["errors"][0]["message"]
    later = post(
        shop,
        "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { message } } }",
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": "gid://shopify/InventoryItem/1",
                        "locationId": LOCATION_ID,
                        "quantity": 1,
                        "changeFromQuantity": 0,
                    }
                ],
            }
        },
    )
    assert "changeFromQuantity" in later["errors"][0]["message"]
    assert "data" not in later
    assert shop.store.products == {}


def test_a_sandbox_with_a_state_file_keeps_its_store_across_restarts(tmp_path):
    from decimal import Decimal

    from channels_shopify import mappers
    from inventory.channels import ListingPayload

    state = str(tmp_path / "shopify.state")
    payload = ListingPayload(sku="KEPT-1", title="Kept", description="", price=Decimal("5"), currency="USD", quantity=2)
    with ShopifySandbox(state_file=state) as shop:
        client_for(shop).execute(
            "ProductSet",
            {
                "input": mappers.product_set_input(payload, location_id=LOCATION_ID).input,
                "synchronous": True,
                "locationId": LOCATION_ID,
            },
        )
        shop.simulate_sale("KEPT-1", deliver_webhook=False)
    with ShopifySandbox(state_file=state) as again:
        [product] = again.products(sku="KEPT-1")
        assert product["variants"]["nodes"][0]["inventoryItem"]["inventoryLevel"]["quantities"][0]["quantity"] == 1
        assert len(again.orders()) == 1
        again.simulate_sale("KEPT-1", deliver_webhook=False)  # ids go on from where they were
        assert len({o["number"] for o in again.orders()}) == 2
