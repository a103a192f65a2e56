"""The loopback SP-API's state and operations: listings items, orders, notifications, feeds, and
listings rendered the way Amazon shows them. The HTTP side (routes, auth, buckets, faults) is in
server.py; each operation here runs under the sandbox's lock and answers (status, body).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

CONDITION_TYPES = frozenset(
    [
        "new_new",
        "new_open_box",
        "new_oem",
        "refurbished_refurbished",
        "used_like_new",
        "used_very_good",
        "used_good",
        "used_acceptable",
        "collectible_like_new",
        "collectible_very_good",
        "collectible_good",
        "collectible_acceptable",
        "club_club",
    ]
)
US = "ATVPDKIKX0DER"


def models_dir() -> Path:
    return Path(settings.BASE_DIR) / "contracts" / "amazon" / "models"


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SandboxOperations:
    """Mixed into AmazonSandbox: one method per operationId (`_<operationId>`), and the checks and
    rendering they share. State (items, orders, feeds...) is created by AmazonSandbox."""

    # --- operations (under self.lock) -------------------------------------------------

    def _missing(self, path_params, query, body) -> tuple[int, Any]:
        return 501, error_list("NotImplemented", "This operation is not served by the loopback sandbox.")

    def _getListingsItem(self, path_params, query, body):
        item = self.items.get(path_params["sku"])
        if item is None:
            return 404, error_list("NOT_FOUND", f"SKU '{path_params['sku']}' not found in marketplace {US}")
        return 200, self._render(item, included=query.get("includedData", "summaries").split(","))

    def _searchListingsItems(self, path_params, query, body):
        skus = sorted(self.items)
        size = int(query.get("pageSize") or 10)
        start = int(query.get("pageToken") or 0)
        page = skus[start : start + size]
        included = query.get("includedData", "summaries").split(",")
        answer: dict[str, Any] = {
            "numberOfResults": len(skus),
            "items": [self._render(self.items[s], included=included) for s in page],
        }
        if start + size < len(skus):
            answer["pagination"] = {"nextToken": str(start + size)}
        return 200, answer

    def _putListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        issues = self._issues(body.get("attributes") or {}, body.get("requirements"), full=True)
        preview = query.get("mode") == "VALIDATION_PREVIEW"
        answer = self._submission(sku, issues, preview)
        if answer["status"] == "INVALID" or preview:
            return 200, answer
        now = datetime.now(UTC)
        current = self.items.get(sku)
        self.items[sku] = {
            "sku": sku,
            "productType": body["productType"],
            "attributes": dict(body["attributes"]),
            "created": current["created"] if current else now,
            "updated": now,
            "ready_at": time.time() + self.processing_seconds,
            "issues": [i for i in issues if i["severity"] != "ERROR"],
        }
        return 200, answer

    def _patchListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        current = self.items.get(sku)
        if current is None:
            issue = listing_issue("4000003", f"The SKU '{sku}' does not exist for this seller.", [], "ERROR")
            return 200, self._submission(sku, [issue], query.get("mode") == "VALIDATION_PREVIEW")
        attributes = dict(current["attributes"])
        for patch in body["patches"]:
            name = patch["path"].removeprefix("/attributes/")
            if patch["op"] == "delete":
                attributes.pop(name, None)
            else:
                attributes[name] = patch.get("value")
        issues = self._issues(attributes, "LISTING_OFFER_ONLY", full=True)
        preview = query.get("mode") == "VALIDATION_PREVIEW"
        answer = self._submission(sku, issues, preview)
        if answer["status"] != "INVALID" and not preview:
            current["attributes"] = attributes
            current["updated"] = datetime.now(UTC)
        return 200, answer

    def _deleteListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        if self.items.pop(sku, None) is None:
            return 404, error_list("NOT_FOUND", f"SKU '{sku}' not found")
        return 200, {"sku": sku, "status": "ACCEPTED", "submissionId": str(uuid.uuid4()), "issues": []}

    def _searchOrders(self, path_params, query, body):
        after = query.get("lastUpdatedAfter") or query.get("createdAfter")
        if not after or ("lastUpdatedAfter" in query and "createdAfter" in query):
            return 400, error_list("InvalidInput", "Exactly one of createdAfter or lastUpdatedAfter is required.")
        since = parse_stamp(after)
        key = "lastUpdatedTime" if "lastUpdatedAfter" in query else "createdTime"
        rows = sorted(
            (o for o in self.orders.values() if parse_stamp(o[key]) >= since), key=lambda o: (o[key], o["orderId"])
        )
        size = int(query.get("maxResultsPerPage") or 100)
        start = int(query.get("paginationToken") or 0)
        answer: dict[str, Any] = {"orders": [json.loads(json.dumps(o)) for o in rows[start : start + size]]}
        if start + size < len(rows):
            answer["pagination"] = {"nextToken": str(start + size)}
        answer["lastUpdatedBefore"] = stamp(datetime.now(UTC))
        return 200, answer

    def _getOrder(self, path_params, query, body):
        order = self.orders.get(path_params["orderId"])
        if order is None:
            return 404, error_list("NotFound", f"Order {path_params['orderId']} not found")
        wanted = set((query.get("includedData") or "").split(","))
        if wanted & {"BUYER", "RECIPIENT"} and not query.get("_rdt"):
            return 403, error_list(
                "Unauthorized", "Access to requested resource is denied.", "Buyer data needs a Restricted Data Token."
            )
        answer = json.loads(json.dumps(order))
        pii = self.pii.get(order["orderId"]) or {}
        if "BUYER" in wanted and pii.get("buyer"):
            answer["buyer"] = pii["buyer"]
        if "RECIPIENT" in wanted and pii.get("recipient"):
            answer["recipient"] = pii["recipient"]
        return 200, {"order": answer}

    def _confirmShipment(self, path_params, query, body):
        order = self.orders.get(path_params["orderId"])
        if order is None:
            return 404, {"errors": [{"code": "NotFound", "message": f"Order {path_params['orderId']} not found"}]}
        known = {line["orderItemId"]: line["quantityOrdered"] for line in order["orderItems"]}
        package = body["packageDetail"]
        for line in package["orderItems"]:
            if known.get(line["orderItemId"], 0) < line["quantity"]:
                return 400, {
                    "errors": [
                        {
                            "code": "InvalidInput",
                            "message": f"Order item {line['orderItemId']} cannot ship {line['quantity']}.",
                        }
                    ]
                }
        order["fulfillment"]["fulfillmentStatus"] = "SHIPPED"
        order["lastUpdatedTime"] = stamp(datetime.now(UTC))
        order.setdefault("packages", []).append(
            {
                "packageReferenceId": package["packageReferenceId"],
                "carrier": package["carrierCode"],
                "trackingNumber": package["trackingNumber"],
            }
        )
        return 204, None

    def _createRestrictedDataToken(self, path_params, query, body):
        opens = {(r["method"], r["path"]) for r in body["restrictedResources"]}
        token = "Atz.sprdt|" + secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + 3600
        self.restricted[token] = opens
        return 200, {"restrictedDataToken": token, "expiresIn": 3600}

    # --- notifications -------------------------------------------------------------------

    def _getDestinations(self, path_params, query, body):
        return 200, {"payload": list(self.destinations.values())}

    def _createDestination(self, path_params, query, body):
        arn = ((body.get("resourceSpecification") or {}).get("sqs") or {}).get("arn")
        if not arn:
            return 400, error_list("InvalidInput", "An SQS destination needs resourceSpecification.sqs.arn.")
        if any(d["resource"].get("sqs", {}).get("arn") == arn for d in self.destinations.values()):
            return 409, error_list("Conflict", f"A destination for {arn} already exists.")
        destination_id = str(uuid.uuid4())
        self.destinations[destination_id] = {
            "destinationId": destination_id,
            "name": body["name"],
            "resource": {"sqs": {"arn": arn}},
        }
        return 200, {"payload": self.destinations[destination_id]}

    def _getSubscription(self, path_params, query, body):
        found = self.subscriptions.get(path_params["notificationType"])
        if found is None:
            return 404, error_list("NotFound", f"No subscription for {path_params['notificationType']}.")
        return 200, {"payload": found}

    def _createSubscription(self, path_params, query, body):
        kind = path_params["notificationType"]
        if body["destinationId"] not in self.destinations:
            return 400, error_list("InvalidInput", f"Unknown destination {body['destinationId']}.")
        if kind in self.subscriptions:
            return 409, error_list("Conflict", f"A subscription for {kind} already exists.")
        self.subscriptions[kind] = {
            "subscriptionId": str(uuid.uuid4()),
            "payloadVersion": body["payloadVersion"],
            "destinationId": body["destinationId"],
        }
        return 200, {"payload": self.subscriptions[kind]}

    # --- feeds ---------------------------------------------------------------------------

    def _createFeedDocument(self, path_params, query, body):
        document_id = "amzn1.tortuga.4." + uuid.uuid4().hex
        self.documents[document_id] = {"content": b"", "compression": None}
        return 201, {"feedDocumentId": document_id, "url": f"{self.base_url}/_documents/{document_id}"}

    def _createFeed(self, path_params, query, body):
        if body["inputFeedDocumentId"] not in self.documents:
            return 400, error_list("InvalidInput", f"Unknown inputFeedDocumentId {body['inputFeedDocumentId']}")
        feed_id = str(50000 + len(self.feeds) + 1)
        self.feeds[feed_id] = {
            "feedId": feed_id,
            "feedType": body["feedType"],
            "marketplaceIds": list(body["marketplaceIds"]),
            "createdTime": stamp(datetime.now(UTC)),
            "processingStatus": "IN_QUEUE",
            "document": body["inputFeedDocumentId"],
        }
        return 202, {"feedId": feed_id}

    def _getFeed(self, path_params, query, body):
        feed = self.feeds.get(path_params["feedId"])
        if feed is None:
            return 404, error_list("NotFound", f"Feed {path_params['feedId']} not found")
        if feed["processingStatus"] == "IN_QUEUE":
            self._process_feed(feed)
        return 200, {k: v for k, v in feed.items() if k != "document"}

    def _getFeedDocument(self, path_params, query, body):
        document_id = path_params["feedDocumentId"]
        document = self.documents.get(document_id)
        if document is None:
            return 404, error_list("NotFound", f"Document {document_id} not found")
        answer = {"feedDocumentId": document_id, "url": f"{self.base_url}/_documents/{document_id}"}
        if document.get("compression"):
            answer["compressionAlgorithm"] = document["compression"]
        return 200, answer

    def _process_feed(self, feed: dict) -> None:
        """Apply a JSON_LISTINGS_FEED like Amazon: check it against the feed schema, apply each
        message with the same checks as the Listings Items API, and write a GZIP processing report."""
        import gzip

        from jsonschema import Draft7Validator

        now = stamp(datetime.now(UTC))
        feed["processingStartTime"] = now
        try:
            document = json.loads(self.documents[feed["document"]]["content"] or b"null")
        except ValueError:
            document = None
        schema = json.loads((models_dir().parent / "schemas" / "feeds" / "listings-feed-schema-v2.json").read_text())
        problems = (
            [e.message for e in Draft7Validator(schema).iter_errors(document)] if document is not None else ["not JSON"]
        )
        if feed["feedType"] != "JSON_LISTINGS_FEED" or problems:
            self.feed_problems.extend(problems)
            feed.update(processingStatus="FATAL", processingEndTime=now)
            return
        issues, accepted, invalid = [], 0, 0
        for message in document["messages"]:
            sku, message_id = message["sku"], message["messageId"]
            found = self._apply_feed_message(message)
            for issue in found:
                row = {
                    "messageId": message_id,
                    "sku": sku,
                    "code": issue["code"],
                    "severity": issue["severity"],
                    "message": issue["message"],
                }
                if issue.get("attributeNames"):
                    row["attributeName"] = issue["attributeNames"][0]
                issues.append(row)
            if any(i["severity"] == "ERROR" for i in found):
                invalid += 1
            else:
                accepted += 1
        report = {
            "header": {"sellerId": self.seller_id, "version": "2.0", "feedId": feed["feedId"]},
            "issues": issues,
            "summary": {
                "errors": sum(1 for i in issues if i["severity"] == "ERROR"),
                "warnings": sum(1 for i in issues if i["severity"] == "WARNING"),
                "messagesProcessed": accepted + invalid,
                "messagesAccepted": accepted,
                "messagesInvalid": invalid,
            },
        }
        report_id = "amzn1.tortuga.4." + uuid.uuid4().hex
        self.documents[report_id] = {"content": gzip.compress(json.dumps(report).encode()), "compression": "GZIP"}
        feed.update(processingStatus="DONE", processingEndTime=stamp(datetime.now(UTC)), resultFeedDocumentId=report_id)

    def _apply_feed_message(self, message: dict) -> list[dict]:
        sku = message["sku"]
        current = self.items.get(sku)
        operation = message["operationType"]
        if operation in ("PATCH", "PARTIAL_UPDATE"):
            if current is None:
                return [listing_issue("4000003", f"The SKU '{sku}' does not exist for this seller.", [])]
            attributes = dict(current["attributes"])
            if operation == "PATCH":
                for patch in message["patches"]:
                    attributes[patch["path"].removeprefix("/attributes/")] = patch.get("value")
            else:
                attributes.update(message["attributes"])
            found = self._issues(attributes, "LISTING_OFFER_ONLY", full=True)
            if not any(i["severity"] == "ERROR" for i in found):
                current["attributes"] = attributes
                current["updated"] = datetime.now(UTC)
            return found
        if operation == "DELETE":
            self.items.pop(sku, None)
            return []
        found = self._issues(message.get("attributes") or {}, message.get("requirements"), full=True)
        if not any(i["severity"] == "ERROR" for i in found):
            now = datetime.now(UTC)
            self.items[sku] = {
                "sku": sku,
                "productType": message["productType"],
                "attributes": dict(message["attributes"]),
                "created": current["created"] if current else now,
                "updated": now,
                "ready_at": time.time() + self.processing_seconds,
                "issues": [],
            }
        return found

    # --- listings as Amazon shows them -----------------------------------------------

    def _issues(self, attributes: Mapping[str, Any], requirements: str | None, *, full: bool) -> list[dict]:
        found = []

        def first(name: str) -> Mapping[str, Any]:
            rows = attributes.get(name) or []
            return rows[0] if rows and isinstance(rows[0], Mapping) else {}

        if requirements == "LISTING_OFFER_ONLY":
            asin = str(first("merchant_suggested_asin").get("value") or "")
            if not asin:
                found.append(
                    listing_issue(
                        "90220", "'merchant_suggested_asin' is required but not supplied.", ["merchant_suggested_asin"]
                    )
                )
            elif len(asin) != 10 or not asin.isalnum() or asin in self.unknown_asins:
                found.append(
                    listing_issue(
                        "8541",
                        f"The ASIN '{asin}' does not match any product in the Amazon catalog.",
                        ["merchant_suggested_asin"],
                    )
                )
        condition = str(first("condition_type").get("value") or "")
        if not condition:
            found.append(listing_issue("90220", "'condition_type' is required but not supplied.", ["condition_type"]))
        elif condition not in CONDITION_TYPES:
            found.append(
                listing_issue(
                    "90000900", f"The value '{condition}' is not valid for 'condition_type'.", ["condition_type"]
                )
            )
        offer = first("purchasable_offer")
        try:
            price = Decimal(str(offer["our_price"][0]["schedule"][0]["value_with_tax"]))
        except (KeyError, IndexError, TypeError, ArithmeticError):
            price = None
        if price is None:
            found.append(
                listing_issue("90220", "'purchasable_offer' is required but not supplied.", ["purchasable_offer"])
            )
        elif price <= 0:
            found.append(listing_issue("90000900", "The price must be greater than 0.", ["purchasable_offer"]))
        availability = first("fulfillment_availability")
        quantity = availability.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            found.append(
                listing_issue(
                    "90000900", "'quantity' must be a whole number of 0 or more.", ["fulfillment_availability"]
                )
            )
        return found

    def _submission(self, sku: str, issues: list[dict], preview: bool) -> dict:
        errors = [i for i in issues if i["severity"] == "ERROR"]
        status = "INVALID" if errors else ("VALID" if preview else "ACCEPTED")
        return {"sku": sku, "status": status, "submissionId": str(uuid.uuid4()), "issues": issues}

    def _render(self, item: Mapping[str, Any], included: list[str] | None = None) -> dict:
        included = included or ["summaries", "attributes", "issues", "offers", "fulfillmentAvailability"]
        ready = time.time() >= item["ready_at"]
        quantity = offer_quantity(item)
        status = (["BUYABLE", "DISCOVERABLE"] if quantity > 0 else ["DISCOVERABLE"]) if ready else []
        rendered: dict[str, Any] = {"sku": item["sku"]}
        if "summaries" in included:
            head = {
                "marketplaceId": US,
                "asin": offer_asin(item) or None,
                "productType": item["productType"],
                "conditionType": first_value(item, "condition_type") or None,
                "status": status,
                "itemName": f"Offer {item['sku']}",
                "createdDate": stamp(item["created"]),
                "lastUpdatedDate": stamp(item["updated"]),
            }
            rendered["summaries"] = [{k: v for k, v in head.items() if v is not None}]
        if "attributes" in included:
            rendered["attributes"] = item["attributes"]
        if "issues" in included:
            rendered["issues"] = list(item["issues"])
        if "offers" in included and ready and offer_price(item) is not None:
            rendered["offers"] = [
                {
                    "marketplaceId": US,
                    "offerType": "B2C",
                    "price": {"currencyCode": "USD", "amount": str(offer_price(item))},
                }
            ]
        if "fulfillmentAvailability" in included:
            rendered["fulfillmentAvailability"] = [{"fulfillmentChannelCode": "DEFAULT", "quantity": quantity}]
        return rendered


def error_list(code: str, message: str, details: str = "") -> dict:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"errors": [error]}


def listing_issue(code: str, message: str, names: list[str], severity: str = "ERROR") -> dict:
    category = "MISSING_ATTRIBUTE" if "required" in message else "INVALID_ATTRIBUTE"
    return {"code": code, "message": message, "severity": severity, "attributeNames": names, "categories": [category]}


def first_value(item: Mapping[str, Any], name: str) -> Any:
    rows = item["attributes"].get(name) or []
    return rows[0].get("value") if rows and isinstance(rows[0], Mapping) else None


def offer_asin(item: Mapping[str, Any]) -> str:
    return str(first_value(item, "merchant_suggested_asin") or "")


def offer_quantity(item: Mapping[str, Any]) -> int:
    rows = item["attributes"].get("fulfillment_availability") or []
    try:
        return int(rows[0]["quantity"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0


def set_offer_quantity(item: dict, quantity: int) -> None:
    rows = item["attributes"].get("fulfillment_availability") or [{"fulfillment_channel_code": "DEFAULT"}]
    item["attributes"]["fulfillment_availability"] = [{**rows[0], "quantity": quantity}]


def offer_price(item: Mapping[str, Any]) -> Decimal | None:
    rows = item["attributes"].get("purchasable_offer") or []
    try:
        return Decimal(str(rows[0]["our_price"][0]["schedule"][0]["value_with_tax"])).quantize(Decimal("0.01"))
    except (IndexError, KeyError, TypeError, ArithmeticError):
        return None


def parse_stamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
