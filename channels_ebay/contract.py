"""eBay's official OpenAPI documents (contracts/ebay/*.yaml) as validators.

Used by the loopback sandbox (every request body it receives) and by the tests (every body
the client sends, every answer the sandbox gives). Each document is loaded once per process.

Schemas are validated *closed*: an object property the document does not declare is an
error, so a misspelt field cannot pass. One correction, taken from the document's own words:
`Product.aspects` is typed `string` in eBay's OAS but described (and accepted by eBay) as an
object of name -> [values] (`"aspects": {"Brand": ["GoPro"]}`); it is validated as that object.
Likewise `Destination.deliveryConfig` (typed string, "the configuration associated with this
destination") is validated as the DeliveryConfig object the request side sends.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from django.conf import settings
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOCUMENTS = {
    "inventory": ("sell_inventory_v1_oas3.yaml", "/sell/inventory/v1"),
    "fulfillment": ("sell_fulfillment_v1_oas3.yaml", "/sell/fulfillment/v1"),
    "account": ("sell_account_v1_oas3.yaml", "/sell/account/v1"),
    "notification": ("commerce_notification_v1_oas3.yaml", "/commerce/notification/v1"),
}
ASPECTS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}


class ContractMissing(RuntimeError):
    pass


def contracts_dir() -> Path:
    """contracts/ebay in the repository, else the shared workspace's copy."""
    base = Path(settings.BASE_DIR)
    for candidate in (
        base / "contracts" / "ebay",
        base.parent / "shared" / "contracts" / "ebay",
        Path("/work/shared/contracts/ebay"),
    ):
        if (candidate / DOCUMENTS["inventory"][0]).exists():
            return candidate
    raise ContractMissing("eBay's OpenAPI documents are not in contracts/ebay (nor in ../shared/contracts/ebay).")


@cache
def document(api: str) -> dict:
    path = contracts_dir() / DOCUMENTS[api][0]
    with path.open("rb") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _close(schema: Any) -> Any:
    if isinstance(schema, dict):
        closed = {k: _close(v) for k, v in schema.items()}
        if closed.get("type") == "object" and "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_close(v) for v in schema]
    return schema


@cache
def _registry(api: str) -> tuple[Registry, str]:
    doc = copy.deepcopy(document(api))
    schemas = doc["components"]["schemas"]
    if "Product" in schemas:
        schemas["Product"]["properties"]["aspects"] = ASPECTS
    if "Destination" in schemas:  # typed string, described as "the configuration": the DeliveryConfig object
        schemas["Destination"]["properties"]["deliveryConfig"] = {"$ref": "#/components/schemas/DeliveryConfig"}
    doc["components"] = {"schemas": _close(schemas)}
    uri = f"urn:ebay:{api}"
    resource = Resource(contents={"components": doc["components"]}, specification=DRAFT7)
    return Registry().with_resource(uri, resource), uri


def validator(api: str, schema_name: str) -> jsonschema.Validator:
    return _validator(api, f"#/components/schemas/{schema_name}")


@cache
def _validator(api: str, pointer: str) -> jsonschema.Validator:
    registry, uri = _registry(api)
    return jsonschema.Draft7Validator({"$ref": uri + pointer}, registry=registry)


def _inline_validator(api: str, schema: dict) -> jsonschema.Validator:
    registry, uri = _registry(api)
    schema = _close(_rebase(schema, uri))
    return jsonschema.Draft7Validator(schema, registry=registry)


def _rebase(schema: Any, uri: str) -> Any:
    if isinstance(schema, dict):
        return {k: (uri + v if k == "$ref" and v.startswith("#") else _rebase(v, uri)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v, uri) for v in schema]
    return schema


@cache
def _operations(api: str) -> list[tuple[str, re.Pattern, str, dict]]:
    found = []
    for template, ops in document(api)["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in ops.items():
            if method in ("get", "put", "post", "delete"):
                found.append((method.upper(), pattern, template, op))
    return found


def operation(api: str, method: str, path: str) -> tuple[str, dict] | None:
    """The documented operation for a method and a path under the API's base path."""
    for verb, pattern, template, op in _operations(api):
        if verb == method and pattern.match(path):
            return template, op
    return None


def request_problems(api: str, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> list[str]:
    """What is wrong with a request by the document: unknown operation, missing headers, invalid body."""
    found = operation(api, method, path)
    if found is None:
        return [f"{method} {path} is not an operation of eBay's {api} API"]
    template, op = found
    problems = []
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for parameter in op.get("parameters") or []:
        if parameter.get("in") == "header" and parameter.get("required") and parameter["name"].lower() not in lowered:
            problems.append(f"the header {parameter['name']} is required on {method} {template}")
    content = (op.get("requestBody") or {}).get("content") or {}
    schema = next((c.get("schema") for c in content.values() if c.get("schema")), None)
    if schema is None:
        if body not in (None, b"", {}):
            problems.append(f"{method} {template} takes no body")
        return problems
    if body is None:
        if (op.get("requestBody") or {}).get("required"):
            problems.append(f"{method} {template} needs a body")
        return problems
    problems.extend(_schema_problems(api, schema, body))
    return problems


def response_problems(api: str, method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with an answer by the document (its status is documented; its body fits)."""
    found = operation(api, method, path)
    if found is None:
        return [f"{method} {path} is not an operation of eBay's {api} API"]
    template, op = found
    responses = {str(k): v for k, v in (op.get("responses") or {}).items()}
    if str(status) not in responses:
        return [f"{method} {template} does not document status {status} (documents {sorted(responses)})"]
    content = (responses[str(status)] or {}).get("content") or {}
    if not content and str(status) == "207":  # the document gives 207 (partial results) no body: 200's shape
        content = (responses.get("200") or {}).get("content") or {}
    schema = next((c.get("schema") for c in content.values() if c.get("schema")), None)
    if schema is None or body in (None, b""):
        return []
    return _schema_problems(api, schema, body)


def _schema_problems(api: str, schema: dict, body: Any) -> list[str]:
    check = _validator(api, schema["$ref"]) if "$ref" in schema and len(schema) == 1 else _inline_validator(api, schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in sorted(check.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]


def api_of(path: str) -> tuple[str, str] | None:
    """(api, path under its base) for a full request path, e.g. /sell/inventory/v1/offer -> (inventory, /offer)."""
    for api, (_file, base) in DOCUMENTS.items():
        if path.startswith(base + "/") or path == base:
            return api, path[len(base) :] or "/"
    return None
