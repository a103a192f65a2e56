"""The connection check: reads only, step by step, in plain words."""

from __future__ import annotations

import re

from inventory.channels import (
    ChannelError,
    CheckStep,
    ConnectionCheck,
)

from ..client import EbayClient
from ..models import EbayConnection, EbayListingDetail
from .base import client_for, ebay_connection

# --- check ---------------------------------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: the token, the location, each policy, the mapped categories; in plain words."""
    connection = ebay_connection(connection)
    steps: list[CheckStep] = []
    try:
        client = client_for(connection)
        client.access_token("user")
    except ChannelError as error:
        return ConnectionCheck((CheckStep("Token", False, error.message),))
    steps.append(CheckStep("Token", True, "the refresh token gives an access token"))

    def step(label: str, probe, ok_text: str, missing_text: str) -> None:
        try:
            found = probe()
        except ChannelError as error:
            steps.append(CheckStep(label, False, error.message))
            return
        steps.append(CheckStep(label, bool(found), ok_text if found else missing_text))

    key = connection.merchant_location_key
    if not key:
        steps.append(CheckStep("Location", False, "set the merchant location key (eBay needs one to publish)"))
    else:
        step(
            "Location",
            lambda: client.get_location(key),
            f"location {key} exists",
            f"eBay has no inventory location {key}: create it on eBay or fix the key",
        )
    for kind, policy_id in (
        ("fulfillment", connection.fulfillment_policy_id),
        ("payment", connection.payment_policy_id),
        ("return", connection.return_policy_id),
    ):
        label = f"{kind.capitalize()} policy"
        if not policy_id:
            steps.append(CheckStep(label, False, f"set the {kind} policy id (Business policies on eBay)"))
            continue
        step(
            label,
            lambda kind=kind, policy_id=policy_id: _policy_on_marketplace(client, kind, policy_id, connection),
            f"{kind} policy {policy_id} exists on {connection.marketplace_id}",
            f"eBay has no {kind} policy {policy_id} for {connection.marketplace_id}: copy its id from Business policies",
        )
    bad = {name: cid for name, cid in (connection.category_ids or {}).items() if not str(cid).isdigit()}
    if bad:
        steps.append(
            CheckStep(
                "Categories",
                False,
                "eBay category ids are numbers: fix " + ", ".join(f"{k}={v}" for k, v in bad.items()),
            )
        )
    elif refused := _categories_refused_as_not_leaves(connection):
        steps.append(
            CheckStep(
                "Categories",
                False,
                "eBay refused these as not leaf categories when publishing: "
                + ", ".join(f"{name}={cid}" for name, cid in refused.items())
                + "; map each to one of its sub-categories (a leaf)",
            )
        )
    elif connection.category_ids:
        steps.append(
            CheckStep(
                "Categories",
                True,
                f"{len(connection.category_ids)} mapped (eBay confirms a leaf category when the offer is published)",
            )
        )
    else:
        steps.append(CheckStep("Categories", False, "map our categories to eBay leaf category ids"))
    return ConnectionCheck(tuple(steps))


def _categories_refused_as_not_leaves(connection: EbayConnection) -> dict[str, str]:
    """Mapped categories eBay refused at publish with 25005 (not a leaf), as {our category: id}.

    eBay's Taxonomy API, which would say beforehand whether an id is a leaf, is not among the
    official contracts this product follows (contracts/ebay), so the check goes by what eBay
    itself answered: the publish error kept on the listing detail names the category.
    """
    refused = set()
    for text in EbayListingDetail.objects.filter(connection=connection, last_error__contains="25005").values_list(
        "last_error", flat=True
    ):
        refused.update(re.findall(r"[Cc]ategory (?:id )?(\d+)", text))
    return {name: str(cid) for name, cid in (connection.category_ids or {}).items() if str(cid) in refused}


def _policy_on_marketplace(client: EbayClient, kind: str, policy_id: str, connection: EbayConnection) -> bool:
    policy = client.get_policy(kind, policy_id)
    return bool(policy) and policy.get("marketplaceId", connection.marketplace_id) == connection.marketplace_id
