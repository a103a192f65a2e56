"""What the Reverb client sends, checked against Reverb's own OpenAPI document (contracts/reverb).

The document types requests only (every response is `default: Unexpected error`), so:
- every request body the client sends is validated against the operation's schema, closed
  (a property the document does not declare is an error, so a typo cannot pass);
- every request goes to a documented method + path, with documented query parameters
  (one known exception, named below);
- the enums we hard-code (conditions, currencies, end reasons, webhook topics) equal the
  document's;
- the response fields the mappers read are pinned in RESPONSE_SHAPES (from Reverb's docs,
  its Magento plugin and observed answers, see CHANNELS.md §2), the sandbox's answers are
  validated against them, and the fields a listing shares with the request side are
  validated against the document's request schema.
"""

import copy
import json
import re
from dataclasses import replace
from decimal import Decimal

import jsonschema
import pytest
import yaml

from channels_reverb import mappers, sync
from channels_reverb.client import END_REASONS, ReverbClient
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from channels_reverb.sandbox.store import WEBHOOK_TOPICS
from inventory.channels import END_SOLD_ELSEWHERE, END_SOLD_HERE, ListingPayload
from tests.contracts import CONTRACTS, contract_path
from tests.test_reverb_mappers import REVERB_LISTING, REVERB_ORDER

OPENAPI = CONTRACTS / "reverb" / "openapi.yaml"  # read through contract_path: missing fails, never skips

# Query parameters we send that the document does not declare, and why they are right.
UNDECLARED_QUERY = {
    # Reverb's order-sync guide (rv:/retrievesync-orders) and its Magento plugin poll with it;
    # the document lists no parameter at all for this operation.
    ("GET", "/my/orders/selling/all"): {"updated_start_date"},
    # Declared on Reverb's other collections (/listings, /listings/all, negotiations: default 24)
    # but not on this one; the listing scan asks for 100 a page and follows _links.next whatever
    # Reverb answers (channels_reverb.client.LISTING_PAGE_SIZE).
    ("GET", "/my/listings"): {"per_page"},
}

MONEY = {
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {"amount": {"type": "string"}, "amount_cents": {"type": "integer"}, "currency": {"type": "string"}},
}
LINK = {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}
LISTING_SHAPE = {
    "type": "object",
    "required": ["id", "sku", "state", "price", "_links"],
    "properties": {
        "id": {"type": ["integer", "string"]},
        "slug": {"type": "string"},
        "sku": {"type": ["string", "null"]},
        "make": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "title": {"type": ["string", "null"]},
        "inventory": {"type": "integer"},
        "has_inventory": {"type": "boolean"},
        "price": MONEY,
        "condition": {"type": ["object", "null"], "properties": {"uuid": {"type": "string"}}},
        "state": {
            "oneOf": [
                {"type": "object", "required": ["slug"], "properties": {"slug": {"type": "string"}}},
                {"type": "string"},
            ]
        },
        "photos": {"type": "array", "items": {"type": ["object", "string"]}},
        "_links": {"type": "object", "properties": {"self": LINK, "web": LINK}},
    },
}
ORDER_SHAPE = {
    "type": "object",
    "required": ["order_number", "status", "created_at", "updated_at", "quantity", "amount_product"],
    "properties": {
        "order_number": {"type": ["string", "integer"]},
        "product_id": {"type": ["string", "integer"]},
        "sku": {"type": ["string", "null"]},
        "status": {"type": "string"},
        "created_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?([+-]\d\d:\d\d|Z)$"},
        "updated_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?([+-]\d\d:\d\d|Z)$"},
        "quantity": {"type": "integer", "minimum": 1},
        "amount_product": MONEY,
        "shipping": MONEY,
        "amount_tax": MONEY,
        "total": MONEY,
        "buyer_name": {"type": "string"},
        "buyer_email": {"type": "string"},
        "shipping_address": {
            "type": "object",
            "properties": {
                k: {"type": ["string", "null"]}
                for k in (
                    "name",
                    "street_address",
                    "extended_address",
                    "locality",
                    "region",
                    "postal_code",
                    "country_code",
                )
            },
        },
        "_links": {"type": "object", "properties": {"listing": LINK}},
    },
}


def page_shape(key: str, item: dict) -> dict:
    return {
        "type": "object",
        "required": [key, "total", "current_page", "total_pages", "_links"],
        "properties": {
            key: {"type": "array", "items": item},
            "total": {"type": "integer"},
            "current_page": {"type": "integer"},
            "total_pages": {"type": "integer"},
            "_links": {"type": "object", "properties": {"next": LINK}},
        },
    }


# --- reading the document ------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec():
    with contract_path("reverb", "openapi.yaml").open() as stream:
        return yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def resolve(node, root):
    """The node with every local $ref replaced by what it points to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target, root)
        return {k: resolve(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root) for v in node]
    return node


def closed(schema):
    """The schema with additionalProperties false on every object that lists its properties."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def operation(spec, method: str, path: str) -> tuple[str, dict]:
    """The documented operation for a concrete request path (literal paths win over templated ones)."""
    templates = sorted(spec["paths"], key=lambda t: (t.count("{"), -len(t)))
    for template in templates:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in spec["paths"][template]:
            return template, resolve(spec["paths"][template][method.lower()], spec)
    raise AssertionError(f"{method} {path} is not an operation in Reverb's OpenAPI document")


def request_schema(op: dict) -> dict:
    return op["requestBody"]["content"]["application/json"]["schema"]


def validate_body(spec, method: str, path: str, body) -> str:
    template, op = operation(spec, method, path)
    assert "requestBody" in op, f"{method} {template} takes no body, yet one was sent: {body}"
    jsonschema.Draft4Validator(closed(request_schema(op))).validate(body)
    return template


# --- a full session against the sandbox --------------------------------------------------

PAYLOADS = [
    ListingPayload(
        sku=f"CT-{condition}-{quantity}",
        title=f"Contract {condition}",
        description="Checked against the document.",
        price=Decimal("1234.5"),
        currency=currency,
        quantity=quantity,
        brand="Fender",
        model="Jazzmaster",
        year="1962",
        finish="Olympic White",
        category="Electric Guitars",
        condition=condition,
        photos=("https://cdn.example.com/1.jpg",),
        video_url="https://youtu.be/dQw4w9WgXcQ",
    )
    for condition, quantity, currency in [
        ("brand_new", 4, "USD"),
        ("mint", 3, "EUR"),
        ("mint", 1, "GBP"),
        ("excellent", 1, "CAD"),
        ("b_stock", 2, "AUD"),
        ("non_functioning", 1, "JPY"),
    ]
]


@pytest.fixture
def session(db, account):
    """Every kind of call the Reverb sync makes, recorded by the sandbox."""
    sync._clients.__dict__.clear()
    with ReverbSandbox(page_size=2, max_page_size=2) as sandbox:
        connection = ReverbConnection.objects.create(
            account=account,
            name="Contract",
            api_token=DEFAULT_TOKEN,
            base_url=sandbox.base_url,
            shipping_profile_id="4521",
            category_uuids={"Electric Guitars": "dfd39027-d134-4353-b9e4-57dc6be791b9"},
        )
        sandbox.add_external_listing("CT-excellent-1", state="ended")  # adopted, not created
        sandbox.add_external_listing("CT-draft", state="draft")
        ids = [sync.publish(connection, payload, None).external_id for payload in PAYLOADS]
        assert len(set(ids)) == len(PAYLOADS)
        every_field = frozenset(f for f in mappers.REVISE_FIELDS)
        for payload, listing_id in zip(PAYLOADS, ids, strict=True):
            sync.revise(connection, listing_id, replace(payload, video_url=""), every_field)
        sync.end(connection, ids[0], END_SOLD_ELSEWHERE)
        sync.end(connection, ids[1], END_SOLD_HERE)
        sync.end(connection, str(sandbox.listings(sku="CT-draft")[0]["id"]), END_SOLD_ELSEWHERE)  # deletes it
        sale = sandbox.simulate_sale(ids[3], deliver_webhook=False)
        sync.pull(connection, None)
        event = sync.parse_webhook(connection, {}, json.dumps(sale).encode())
        sync.webhook_orders(connection, event)
        sync.ship_order(connection, str(sale["order_number"]), "dhl express", "1Z999AA10123456784")
        sync.read_listing(connection, ids[2])
        client = ReverbClient(sandbox.base_url, DEFAULT_TOKEN)
        client.register_webhook("https://shop.example.com/hooks/reverb/abc/", "orders/create")
        client.webhook_registrations()
        client.account()
        yield sandbox


def test_every_body_sent_matches_the_documented_request_schema_exactly(spec, session):
    bodies = [r for r in session.requests() if r.body is not None]
    covered = {validate_body(spec, r.method, r.path, r.body) for r in bodies}

    assert {
        ("POST", "/listings"),
        ("PUT", "/listings/{slug}"),
        ("PUT", "/my/listings/{slug}/state/end"),
        ("POST", "/webhooks/registrations"),
    } <= {(r.method, operation(spec, r.method, r.path)[0]) for r in bodies}
    assert covered  # and every one of them validated


def test_every_request_goes_to_a_documented_operation_with_documented_parameters(spec, session):
    seen = set()
    for request in session.requests():
        template, op = operation(spec, request.method, request.path)
        seen.add((request.method, template))
        if "page" in request.query:
            continue  # a _links.next href, written by Reverb itself
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        undeclared = set(request.query) - declared
        assert undeclared == UNDECLARED_QUERY.get((request.method, template), set()) & set(request.query), (
            f"{request.method} {template} sent undeclared query parameters {undeclared}"
        )

    assert {
        ("GET", "/my/listings"),
        ("GET", "/listings/{slug}"),
        ("DELETE", "/listings/{slug}"),
        ("GET", "/my/orders/selling/all"),
        ("GET", "/my/orders/selling/{id}"),
        ("GET", "/webhooks/registrations"),
        ("GET", "/my/account"),
    } <= seen


def test_the_validator_would_catch_a_field_reverb_does_not_have(spec):
    body = mappers.listing_body(PAYLOADS[0])
    validate_body(spec, "POST", "/listings", body)

    with pytest.raises(jsonschema.ValidationError, match="serial_number"):
        validate_body(spec, "POST", "/listings", {**body, "serial_number": "L123"})
    with pytest.raises(jsonschema.ValidationError):
        validate_body(spec, "POST", "/listings", {**body, "price": {"amount": 1234.5, "currency": "USD"}})
    with pytest.raises(jsonschema.ValidationError):
        validate_body(spec, "PUT", "/my/listings/1/state/end", {"reason": "sold_elsewhere"})


# --- enums we hard-code ------------------------------------------------------------------


def test_our_condition_uuids_are_exactly_reverbs(spec):
    schema = request_schema(operation(spec, "POST", "/listings")[1])
    documented = set(schema["properties"]["condition"]["properties"]["uuid"]["enum"])

    assert set(mappers.CONDITION_UUIDS.values()) | {mappers.MINT_WITH_INVENTORY_UUID} == documented


def test_our_currencies_end_reasons_and_topics_are_exactly_reverbs(spec):
    listing = request_schema(operation(spec, "POST", "/listings")[1])
    end = request_schema(operation(spec, "PUT", "/my/listings/1/state/end")[1])
    hooks = request_schema(operation(spec, "POST", "/webhooks/registrations")[1])

    assert set(listing["properties"]["price"]["properties"]["currency"]["enum"]) == mappers.CURRENCIES
    assert set(END_REASONS) == set(end["properties"]["reason"]["enum"])
    assert set(hooks["properties"]["topic"]["enum"]) == WEBHOOK_TOPICS


def test_create_and_update_take_the_same_listing_fields(spec):
    create = request_schema(operation(spec, "POST", "/listings")[1])
    update = request_schema(operation(spec, "PUT", "/listings/1")[1])

    assert set(create["properties"]) == set(update["properties"])


# --- response shapes the mappers rely on --------------------------------------------------


def test_the_sandboxs_answers_have_the_shapes_the_mappers_read(session):
    client = ReverbClient(session.base_url, DEFAULT_TOKEN)
    listing_page = next(client.my_listings())
    order_page = next(client.orders_updated_since(None))

    jsonschema.validate(
        client._request("GET", "/my/listings", params={"state": "all"}), page_shape("listings", LISTING_SHAPE)
    )
    jsonschema.validate(client._request("GET", "/my/orders/selling/all"), page_shape("orders", ORDER_SHAPE))
    for listing in listing_page.items:
        jsonschema.validate(listing, LISTING_SHAPE)
        jsonschema.validate(client.get_listing(listing["id"]), LISTING_SHAPE)
    for order in order_page.items:
        jsonschema.validate(order, ORDER_SHAPE)
        jsonschema.validate(client.get_order(order["order_number"]), ORDER_SHAPE)
    assert order_page.items


def test_the_mapper_fixtures_have_the_same_shapes():
    jsonschema.validate(REVERB_LISTING, LISTING_SHAPE)
    jsonschema.validate(REVERB_ORDER, ORDER_SHAPE)


def test_listing_fields_shared_with_the_request_side_match_the_document(spec, session):
    schema = request_schema(operation(spec, "POST", "/listings")[1])
    writable = set(schema["properties"]) - {"photos"}  # Reverb answers with its own photo objects

    for listing in session.listings():
        shared = {k: v for k, v in listing.items() if k in writable and v is not None}
        assert {"make", "model", "price", "condition", "sku", "inventory", "has_inventory"} <= shared.keys()
        jsonschema.Draft4Validator(schema).validate(shared)
