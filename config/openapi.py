"""The API's error answers, written once into the OpenAPI schema (a drf-spectacular postprocessing hook).

Every 4xx the API gives has one of two bodies (inventory/api/errors.py makes them):

- ``Error``: ``{"code": "...", "detail": "..."}`` plus, for some refusals, fields that say more
  (``missing``, ``allowed``, ``limit``, ``retry_after``...). Refusals of the services, not found,
  not signed in, not allowed, plan limits, rate limits, malformed bodies.
- ``ValidationError``: the request's fields that are wrong, each with its messages
  (``{"price": ["Ensure this value is greater than or equal to 0."]}``); ``non_field_errors``
  for the request as a whole. Nested fields (order lines) nest the same way.

The hook adds the statuses each operation can answer with (400 when it reads a body or query
parameters, 404 when its path names a row, 409 when it writes, 401/403/402/429 for every
operation behind the account permission and the plan throttle) and fills the body of any 4xx
a view documented with a description only.
"""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": "A refusal: `code` names it, `detail` says what to do. Some refusals add fields.",
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable name, e.g. not_found, insufficient_stock."},
        "detail": {"type": "string", "description": "What went wrong and what to do instead."},
    },
    "required": ["code", "detail"],
    "additionalProperties": True,
}
VALIDATION_ERROR = {
    "type": "object",
    "description": (
        "The fields that are wrong, each with its messages; `non_field_errors` for the request as a whole. "
        "A nested field (a list of lines) nests the same way."
    ),
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": {"type": "object"}},
            {"type": "object"},
        ]
    },
}

ERROR_REF = {"$ref": "#/components/schemas/Error"}
BAD_REQUEST = {"anyOf": [{"$ref": "#/components/schemas/ValidationError"}, ERROR_REF]}

DESCRIPTIONS = {
    "400": "The request is malformed or has invalid fields; the body says which and why.",
    "401": "Not signed in: send `Authorization: Token <key>` (POST /api/v1/auth/token/) or a session cookie.",
    "402": "Your plan does not include this or its limit is reached: the body names the plan that does.",
    "403": "Signed in, but this account or role may not do this.",
    "404": "Not found in your account.",
    "405": "This method is not allowed here.",
    "409": "Not allowed in the row's current state: the body says why and what is allowed.",
    "415": "Unsupported content type: send JSON (or multipart where the operation takes files).",
    "429": "Too many requests (your plan's rate, or repeated wrong passwords at the token login): retry after the `Retry-After` seconds.",
}
WRITE_METHODS = {"post", "put", "patch", "delete"}
PUBLIC_OPERATIONS = {"v1_auth_token_create"}


def _error_content(status: str) -> dict:
    schema = BAD_REQUEST if status == "400" else ERROR_REF
    return {"application/json": {"schema": schema}}


def _statuses(path: str, method: str, operation: dict) -> set[str]:
    statuses = {"400"} if operation.get("requestBody") or operation.get("parameters") else set()
    if operation.get("operationId") not in PUBLIC_OPERATIONS:
        statuses |= {"401", "403", "402", "429"}
    else:  # the token login: throttled per address, and locked after repeated wrong passwords
        statuses |= {"429"}
    names = {parameter.get("name") for parameter in operation.get("parameters", [])}
    if "{" in path or "page" in names:  # a row that is not in the account, or a page past the last
        statuses.add("404")
    if method in WRITE_METHODS:
        statuses |= {"400", "409", "415"} if operation.get("requestBody") else {"409"}
    return statuses


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: see the module docstring."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    schemas["ValidationError"] = VALIDATION_ERROR
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                responses.setdefault(status, {"description": DESCRIPTIONS[status]})
            for status, response in responses.items():
                if str(status).startswith("4") and not response.get("content"):
                    response["content"] = _error_content(str(status))
                    response.setdefault("description", DESCRIPTIONS.get(str(status), ""))
    return result
