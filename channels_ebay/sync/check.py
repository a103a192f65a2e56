"""The connection check: reads only, step by step, in plain words."""

from __future__ import annotations

from inventory.channels import (
    ChannelError,
    CheckStep,
    ConnectionCheck,
)

from ..client import EbayClient
from ..models import EbayConnection
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


def _policy_on_marketplace(client: EbayClient, kind: str, policy_id: str, connection: EbayConnection) -> bool:
    policy = client.get_policy(kind, policy_id)
    return bool(policy) and policy.get("marketplaceId", connection.marketplace_id) == connection.marketplace_id
