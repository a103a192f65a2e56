"""What the eBay client sends and what the loopback eBay answers, checked against eBay's OpenAPI documents.

contracts/ebay holds eBay's own OAS3 files (Inventory, Fulfillment, Account, Notification).
Each is loaded once per test session (channels_ebay.contract caches it). Schemas are validated
closed: a property the document does not declare fails, so a misspelt field cannot pass.

A whole selling day runs against the sandbox (publish, adopt, revise, bulk price/quantity with a
207, end, relist, a sale, pulls, a notification key, a migration, the connection check). Then:
- every request went to a documented operation, with its required headers, and its body fits the
  operation's request schema;
- every answer's status is documented for the operation and its body fits the response schema.
"""

import json
import threading
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from channels_ebay import contract, mappers, sync, webhooks
from channels_ebay.client import EbayRequestError
from channels_ebay.models import EbayConnection
from channels_ebay.sandbox import EbaySandbox
from channels_ebay.services import legacy_listings_migrate
from inventory.channels import END_SOLD_ELSEWHERE, ListingPayload
from tests.contracts import contract_path

pytestmark = pytest.mark.django_db

FILES = [name for name, _base in contract.DOCUMENTS.values()]

STRAT = ListingPayload(
    sku="CT-1964",
    title="1964 Fender Stratocaster in Fiesta Red with its original tweed case and hang tag, all original",
    description="<p>All original.</p>",
    price=Decimal("5000.00"),
    currency="USD",
    quantity=3,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Fiesta Red",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/strat-1.jpg", "https://cdn.example.com/strat-2.jpg"),
)


@pytest.mark.parametrize("name", FILES)
def test_the_contract_files_are_in_the_repository(name):
    path = contract_path("ebay", name)  # fails (never skips) when missing
    assert contract.contracts_dir() == path.parent
    assert contract.document({v[0]: k for k, v in contract.DOCUMENTS.items()}[name])["openapi"].startswith("3.")


def test_the_validator_has_teeth():
    body = mappers.inventory_item_body(STRAT)
    assert contract.request_problems("inventory", "PUT", "/inventory_item/X", body, {"Content-Language": "en-US"}) == []
    body["product"]["titel"] = body["product"].pop("title")
    problems = contract.request_problems("inventory", "PUT", "/inventory_item/X", body, {})
    assert problems == [
        "the header Content-Language is required on PUT /inventory_item/{sku}",
        "product: Additional properties are not allowed ('titel' was unexpected)",
    ]
    assert contract.request_problems("inventory", "POST", "/offer/1/publish", None, {}) == [
        "POST /offer/1/publish is not an operation of eBay's inventory API"  # the OAS has a trailing slash
    ]
    assert contract.response_problems("inventory", "GET", "/offer/1", 200, {"offerId": 7}) == [
        "offerId: 7 is not of type 'string'"
    ]
    assert contract.response_problems("inventory", "POST", "/offer", 200, {}) == [
        "POST /offer does not document status 200 (documents ['201', '400', '500'])"
    ]


class _Challenged(BaseHTTPRequestHandler):
    """A stand-in for our webhook endpoint: answers eBay's challenge as the real view does."""

    token = "c" * 40

    def do_GET(self):
        code = parse_qs(urlsplit(self.path).query)["challenge_code"][0]
        endpoint = f"http://127.0.0.1:{self.server.server_address[1]}{urlsplit(self.path).path}"
        body = json.dumps({"challengeResponse": webhooks.challenge_response(code, self.token, endpoint)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


@pytest.fixture
def endpoint_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Challenged)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def day(account, endpoint_host):
    """A selling day on the loopback eBay, every request logged."""
    with EbaySandbox() as sandbox:
        connection = EbayConnection.objects.create(
            account=account,
            name="eBay contract",
            category_ids={"Electric Guitars": "33034", "Amps": "38072", "Guitars": "619"},
            **sandbox.connection_fields(),
        )
        strat = sync.publish(connection, STRAT, None)
        sync.publish(connection, STRAT, None)  # adopted
        amp = sync.publish(connection, replace(STRAT, sku="CT-AMP", category="Amps", quantity=1), None)
        sync.revise(connection, strat.external_id, replace(STRAT, title="1964 Stratocaster"), frozenset({"title"}))
        sync.revise(connection, strat.external_id, replace(STRAT, description="Refret."), frozenset({"description"}))
        sync.revise(connection, strat.external_id, replace(STRAT, price=Decimal("4900")), frozenset({"price"}))
        sync.end(connection, amp.external_id, END_SOLD_ELSEWHERE)
        sync.bulk_revise_price_quantity(  # one published, one withdrawn: 207
            connection,
            [
                sync.PriceQuantityChange("CT-1964", strat.external_id, None, "USD", 2),
                sync.PriceQuantityChange("CT-AMP", amp.external_id, Decimal("700"), "USD", None),
            ],
        )
        sync.publish(connection, replace(STRAT, sku="CT-AMP", category="Amps", quantity=1), None)  # relist
        order = sandbox.simulate_sale("CT-1964", deliver=False)
        sync.pull(connection, None)
        sync.pull(connection, timezone.now() - timedelta(hours=1), full_scan=True)
        body, headers = sandbox.signed(sandbox.notification("ORDER_CONFIRMATION", {"orderId": order["orderId"]}))
        sync.webhook_orders(connection, sync.parse_webhook(connection, headers, body))
        sync.read_listing(connection, strat.external_id)
        sync.find_listing(connection, "CT-NONE")
        legacy = sandbox.store.add_legacy_listing("CT-OLD", title="Vox AC30", price="1800.00")
        legacy_listings_migrate(connection, [legacy, "110999999999"])
        with pytest.raises(EbayRequestError):  # 619 is not a leaf category: publishOffer answers 400
            sync.publish(connection, replace(STRAT, sku="CT-BAD", category="Guitars"), None)
        sync.bulk_publish(
            connection, [replace(STRAT, sku=f"CT-B{n}") for n in range(3)] + [replace(STRAT, sku="CT-AMP")]
        )
        sync.check(connection)
        connection.verification_token = _Challenged.token
        connection.save()
        sync.register_webhooks(connection, endpoint_host)
        sync.register_webhooks(connection, endpoint_host)  # again: reads only
        yield sandbox


def test_every_request_the_client_sent_is_what_ebays_documents_allow(day):
    api_requests = day.api_calls()
    assert len(api_requests) > 40
    operations = set()
    for request in api_requests:
        api, path = contract.api_of(request.path)
        template, _op = contract.operation(api, request.method, path)
        operations.add((request.method, template))
        assert contract.request_problems(api, request.method, path, request.body, request.headers) == [], request
        assert request.headers.get("accept-language") == "en-US"
    assert {
        ("PUT", "/inventory_item/{sku}"),
        ("GET", "/inventory_item/{sku}"),
        ("GET", "/inventory_item"),
        ("GET", "/offer"),
        ("POST", "/offer"),
        ("GET", "/offer/{offerId}"),
        ("PUT", "/offer/{offerId}"),
        ("POST", "/offer/{offerId}/publish/"),
        ("POST", "/offer/{offerId}/withdraw"),
        ("POST", "/bulk_update_price_quantity"),
        ("POST", "/bulk_migrate_listing"),
        ("GET", "/location/{merchantLocationKey}"),
        ("GET", "/order"),
        ("GET", "/order/{orderId}"),
        ("GET", "/public_key/{public_key_id}"),
        ("GET", "/fulfillment_policy/{fulfillmentPolicyId}"),
        ("GET", "/payment_policy/{payment_policy_id}"),
        ("GET", "/return_policy/{return_policy_id}"),
        ("POST", "/bulk_get_inventory_item"),
        ("POST", "/bulk_create_or_replace_inventory_item"),
        ("POST", "/bulk_create_offer"),
        ("POST", "/bulk_publish_offer"),
        ("GET", "/destination"),
        ("POST", "/destination"),
        ("GET", "/subscription"),
        ("POST", "/subscription"),
    } <= operations
    assert [r for r in day.requests() if r.problems] == []


def test_every_answer_of_the_sandbox_is_what_ebays_documents_say(day):
    statuses = set()
    for request in day.api_calls():
        api, path = contract.api_of(request.path)
        statuses.add(request.status)
        problems = contract.response_problems(api, request.method, path, request.status, request.answer)
        assert problems == [], (request.method, request.path, request.status, request.answer)
    assert {200, 201, 204, 207, 400, 404} <= statuses


def test_the_title_sent_is_cut_at_a_word_within_80(day):
    [first_put] = day.requests("PUT", "/sell/inventory/v1/inventory_item/CT-1964")[:1]
    title = first_put.body["product"]["title"]
    assert title == "1964 Fender Stratocaster in Fiesta Red with its original tweed case and hang tag"
    assert len(title) <= 80


def test_the_orders_filter_is_percent_encoded(day):
    reads = [r for r in day.requests("GET", "/sell/fulfillment/v1/order") if r.path == "/sell/fulfillment/v1/order"]
    assert len(reads) == 2
    assert all("filter=lastmodifieddate:%5B" in r.raw_query and "[" not in r.raw_query for r in reads)
