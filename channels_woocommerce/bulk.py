"""Many products at once through /products/batch (a first listing of a whole catalogue)."""

from __future__ import annotations

from collections.abc import Sequence

from inventory.channels import (
    ChannelError,
    ListingPayload,
    PermanentChannelError,
    PublishResult,
    TransientChannelError,
    retry_transient,
)

from . import mappers
from .access import category_ids, client_for, store_currency, woo_connection
from .client import BATCH_LIMIT, WooCommerceClient, error_code, object_error
from .products import SKU_TAKEN, adoptable, best_product_to_adopt, rank, remember_error, remember_many


def publish_many(
    connection, listings: Sequence[tuple[ListingPayload, str | None]]
) -> list[PublishResult | ChannelError]:
    """Publish many products through /products/batch: one result per input, in order.

    The shop's products are read once (100 a page) to find the SKUs it already has; those are
    updated, the others created, BATCH_LIMIT objects a request. Each object's own refusal comes
    back as that item's error (kept on its WooCommerceListingDetail) while the rest go through.
    A batch whose answer is lost is not sent again blindly: its SKUs are looked up and only what
    is still missing is sent. Every product is read back (GET /products?include=) at the end.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    results: list[PublishResult | ChannelError | None] = [None] * len(listings)
    currency = store_currency(connection, client)
    by_sku: dict[str, dict] = {}
    for product in _all_products(client):
        sku = str(product.get("sku") or "").strip().casefold()
        if sku and adoptable(product, sku) and (sku not in by_sku or rank(product) < rank(by_sku[sku])):
            by_sku[sku] = product

    pending: list[int] = []
    for index, (payload, _external_id) in enumerate(listings):
        problems = mappers.listing_problems(payload, currency)
        if problems:
            results[index] = PermanentChannelError("The shop cannot list this item: " + "; ".join(problems) + ".")
        else:
            pending.append(index)

    product_ids: dict[int, str] = {}
    adopted: set[int] = set()
    for start in range(0, len(pending), BATCH_LIMIT):
        chunk = pending[start : start + BATCH_LIMIT]
        for _attempt in range(5):
            if not chunk:
                break
            chunk = _send_batch(connection, client, listings, chunk, by_sku, product_ids, adopted, results)

    read_back = {str(p.get("id")): p for p in _retrying(client.products_by_id, list(product_ids.values()))}
    remember_many(connection, list(read_back.values()))
    for index, product_id in product_ids.items():
        product = read_back.get(product_id)
        if product is None or mappers.product_state(product) != "live":
            results[index] = PermanentChannelError(
                f"Product {product_id} was saved but the shop does not show it for sale.",
                body={"product_id": product_id},
            )
        else:
            results[index] = PublishResult(
                external_id=product_id, url=str(product.get("permalink") or ""), adopted=index in adopted
            )
    for index, result in enumerate(results):
        if result is None:
            results[index] = TransientChannelError("The shop did not take this product in five tries.")
    return results  # type: ignore[return-value]


def _send_batch(connection, client, listings, chunk, by_sku, product_ids, adopted, results) -> list[int]:
    """One /products/batch for these inputs; returns the ones to send again."""
    creates: list[tuple[int, dict]] = []
    updates: list[tuple[int, dict]] = []
    for index in chunk:
        payload = listings[index][0]
        body = mappers.product_body(payload, category_ids=category_ids(connection, payload.category))
        existing = by_sku.get(payload.sku.strip().casefold())
        if existing is not None:
            updates.append((index, {"id": existing["id"], **body}))
        else:
            creates.append((index, body))
    try:
        answer = client.batch_products(create=[b for _, b in creates], update=[b for _, b in updates])
    except TransientChannelError:
        # It may have been applied: find what exists now, and send the rest again.
        for index in chunk:
            sku = listings[index][0].sku
            found = best_product_to_adopt(_retrying(client.products_by_sku, sku), sku)
            if found is not None:
                by_sku[sku.strip().casefold()] = found
        return chunk
    again: list[int] = []
    pairs = [((index, "create"), obj) for (index, _), obj in zip(creates, answer.created, strict=False)]
    pairs += [((index, "update"), obj) for (index, _), obj in zip(updates, answer.updated, strict=False)]
    for (index, operation), obj in pairs:
        payload = listings[index][0]
        problem = object_error(obj)
        if not problem and obj.get("id"):
            product_ids[index] = str(obj["id"])
            if operation == "update":
                adopted.add(index)
            continue
        if operation == "create" and error_code(obj.get("error")) in SKU_TAKEN:
            found = best_product_to_adopt(_retrying(client.products_by_sku, payload.sku), payload.sku)
            if found is not None:  # made by an earlier batch whose answer was lost: update it next round
                by_sku[payload.sku.strip().casefold()] = found
                again.append(index)
                continue
        results[index] = PermanentChannelError(f"The shop refused {payload.sku}: {problem or 'no id returned'}")
        remember_error(connection, payload.sku, problem or "no id returned")
    # A short answer (objects the shop did not answer for): look again, then send them again.
    again.extend(index for index, _ in creates[len(answer.created) :])
    again.extend(index for index, _ in updates[len(answer.updated) :])
    return again


def _retrying(step, *args):
    return retry_transient(step, *args, attempts=5)


def _all_products(client: WooCommerceClient) -> list[dict]:
    return _retrying(lambda: [product for page in client.products() for product in page.items])
