"""Every GraphQL document the Shopify client can send, checked against Shopify's own schema file.

The file is the official Admin schema (introspection, API version 2025-01) in contracts/shopify.
Each document is validated against it (not against the sandbox), and so are the variables
the mappers build for it: an input field Shopify does not have, a wrong type or a 2026-only
argument fails here before it fails a shop.
"""

import gzip
import json
from decimal import Decimal

import graphql
import pytest
from graphql.execution.values import get_variable_values

from channels_shopify import mappers, schema
from channels_shopify.documents import DOCUMENTS
from channels_shopify.sync import WEBHOOK_TOPICS
from inventory.channels import ListingPayload
from tests.contracts import contract_path

LOCATION = "gid://shopify/Location/1"
PAYLOAD = ListingPayload(
    sku="GIB-335-68",
    title="Gibson ES-335 (1968)",
    description="Sunburst.\n\nOriginal case.",
    price=Decimal("6500.00"),
    currency="USD",
    quantity=1,
    brand="Gibson",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/335-front.jpg", "https://cdn.example.com/335-back.jpg"),
    seo_title="Gibson ES-335 1968 sunburst",
    seo_description="A 1968 ES-335 in sunburst with its case.",
    seo_keywords="vintage, semi-hollow",
)


@pytest.fixture(scope="module")
def admin_schema():
    with gzip.open(contract_path("shopify", "admin_schema_2025-01.json.gz")) as handle:
        built = graphql.build_client_schema(json.load(handle)["data"])
    built._validation_errors = []  # Shopify's schema breaks two schema-definition rules; documents are checked in full
    return built


def variables_errors(admin_schema, operation: str, variables: dict) -> list[str]:
    document = graphql.parse(DOCUMENTS[operation])
    [definition] = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    coerced = get_variable_values(admin_schema, definition.variable_definitions, variables)
    return [e.message for e in coerced] if isinstance(coerced, list) else []


@pytest.mark.parametrize("operation", sorted(DOCUMENTS))
def test_every_document_the_client_sends_is_valid_against_the_official_schema(admin_schema, operation):
    document = graphql.parse(DOCUMENTS[operation])
    assert [e.message for e in graphql.validate(admin_schema, document)] == []
    [definition] = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    assert definition.name.value == operation  # the client names each request by its document


def test_the_sandbox_validates_against_the_same_file():
    assert schema.schema_path("2025-01") == contract_path("shopify", "admin_schema_2025-01.json.gz")


def test_a_create_an_adoption_and_a_photo_change_are_valid_product_set_inputs(admin_schema):
    create = mappers.product_set_input(PAYLOAD, location_id=LOCATION).input
    adopt = mappers.product_set_input(
        PAYLOAD, location_id=LOCATION, product_id="gid://shopify/Product/1", variant_id="gid://shopify/ProductVariant/2"
    ).input
    photos = mappers.photos_input(
        PAYLOAD, product_id="gid://shopify/Product/1", variant_id="gid://shopify/ProductVariant/2"
    )
    for product_input in (create, adopt, photos):
        assert (
            variables_errors(
                admin_schema, "ProductSet", {"input": product_input, "synchronous": True, "locationId": LOCATION}
            )
            == []
        )


def test_revise_inputs_are_valid_for_their_mutations(admin_schema):
    every_field = set(mappers.PRODUCT_FIELDS) | set(mappers.VARIANT_FIELDS) | {"quantity", "photos"}
    product, variant, quantity, photos, _notes = mappers.revise_parts(
        PAYLOAD, every_field, product_id="gid://shopify/Product/1", variant_id="gid://shopify/ProductVariant/2"
    )
    assert (quantity, photos) == (True, True)
    assert variables_errors(admin_schema, "ProductUpdate", {"product": product, "locationId": LOCATION}) == []
    assert (
        variables_errors(
            admin_schema, "VariantsBulkUpdate", {"productId": "gid://shopify/Product/1", "variants": [variant]}
        )
        == []
    )
    assert (
        variables_errors(
            admin_schema,
            "ProductUpdate",
            {"product": {"id": "gid://shopify/Product/1", "status": "DRAFT"}, "locationId": LOCATION},
        )
        == []
    )


def test_stock_changes_are_valid_and_2026_only_inputs_would_be_refused(admin_schema):
    compared = mappers.inventory_input(
        "gid://shopify/InventoryItem/3", LOCATION, 0, 1, "gid://gear-back-office/Listing/X"
    )
    assert variables_errors(admin_schema, "InventorySet", {"input": compared}) == []
    # 2026-04 requires changeFromQuantity; 2025-01 does not know it, so sending it would be refused
    later = {**compared, "quantities": [{**compared["quantities"][0], "changeFromQuantity": 1}]}
    [message] = variables_errors(admin_schema, "InventorySet", {"input": later})
    assert "changeFromQuantity" in message


def test_queries_and_webhook_registrations_take_the_variables_we_send(admin_schema):
    since = mappers.updated_since_query(mappers.parse_time("2025-03-01T10:00:00Z"))
    assert (
        variables_errors(
            admin_schema,
            "Changes",
            {"first": 10, "ordersQuery": since, "productsQuery": None, "locationId": LOCATION},
        )
        == []
    )
    assert variables_errors(admin_schema, "VariantsBySku", {"query": mappers.sku_query("A-1")}) == []
    topics = admin_schema.type_map["WebhookSubscriptionTopic"].values
    for topic in WEBHOOK_TOPICS:
        assert topic in topics
        assert (
            variables_errors(
                admin_schema,
                "WebhookSubscriptionCreate",
                {
                    "topic": topic,
                    "webhookSubscription": {"callbackUrl": "https://bo.example.com/hooks/x/", "format": "JSON"},
                },
            )
            == []
        )


def test_the_codes_we_act_on_are_shopifys_codes(admin_schema):
    inventory_codes = admin_schema.type_map["InventorySetQuantitiesUserErrorCode"].values
    assert {"COMPARE_QUANTITY_STALE", "COMPARE_QUANTITY_REQUIRED", "ITEM_NOT_STOCKED_AT_LOCATION"} <= set(
        inventory_codes
    )
    assert set(mappers.FINANCIAL_STATUSES) == set(admin_schema.type_map["OrderDisplayFinancialStatus"].values)
    assert {"ACTIVE", "DRAFT", "ARCHIVED"} == set(admin_schema.type_map["ProductStatus"].values)


def test_every_page_the_pull_reads_stays_under_shopifys_single_query_limit(admin_schema):
    from channels_shopify.sandbox.cost import MAX_QUERY_COST, document_cost
    from channels_shopify.sync import ORDER_PAGE_SIZE, PAGE_SIZE, PRODUCT_PAGE_SIZE

    pages = {
        "Changes": {"first": PAGE_SIZE, "ordersQuery": "", "productsQuery": None, "locationId": LOCATION},
        "OrdersPage": {"first": ORDER_PAGE_SIZE, "after": None, "query": ""},
        "ProductsPage": {"first": PRODUCT_PAGE_SIZE, "after": None, "query": None, "locationId": LOCATION},
        "OrderLines": {"id": "gid://shopify/Order/1", "after": None},
        "Product": {"id": "gid://shopify/Product/1", "locationId": LOCATION},
    }
    for operation, variables in pages.items():
        cost = document_cost(admin_schema, graphql.parse(DOCUMENTS[operation]), operation, variables)
        assert 0 < cost <= MAX_QUERY_COST, (operation, cost)
