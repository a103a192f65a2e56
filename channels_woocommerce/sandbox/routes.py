"""The official route index (GET /wp-json/wc/v3), used to check every request the sandbox receives.

`contracts/woocommerce/wc-v3-route-index.json` lists the 68 routes of wc/v3, their methods and
the `args` of each (type, enum, required). A request whose route, method, argument names,
types or enum values the index does not allow is answered as WordPress would answer it
(`rest_no_route` 404, `rest_invalid_param` / `rest_missing_callback_param` 400), with one
difference on purpose: WordPress ignores an argument it does not know, the sandbox refuses it,
so a misspelt filter cannot pass silently in tests.

Documented later than the index (WooCommerce 5.8, 2021; CHANNELS.md §9) and so allowed beside
it: `modified_after`, `modified_before` and `dates_are_gmt` on the product and order lists.
The index types `images` as "object" with `items` (a list of image objects): WordPress's
schema check of the time accepted a JSON list there, and stores take one, so a list of image
objects is what is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

INDEX_FILE = ("woocommerce", "wc-v3-route-index.json")
LATER_QUERY_ARGS = {
    ("GET", "/wc/v3/products"): {
        "modified_after": {"type": "string"},
        "modified_before": {"type": "string"},
        "dates_are_gmt": {"type": "boolean"},
    },
    ("GET", "/wc/v3/orders"): {
        "modified_after": {"type": "string"},
        "modified_before": {"type": "string"},
        "dates_are_gmt": {"type": "boolean"},
    },
}
AUTH_ARGS = frozenset(
    {
        "consumer_key",
        "consumer_secret",
        "oauth_consumer_key",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_signature",
        "oauth_signature_method",
    }
)
BATCH_ROUTE = re.compile(r".*/batch$")


def contract_candidates() -> list[Path]:
    """Where the contracts are: the repository's own copy, then the shared workspace's."""
    base = Path(settings.BASE_DIR)
    return [base / "contracts", base.parent / "shared" / "contracts", Path("/work/shared/contracts")]


def index_path() -> Path:
    for root in contract_candidates():
        candidate = root.joinpath(*INDEX_FILE)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "The WooCommerce route index (contracts/woocommerce/wc-v3-route-index.json) is missing; the sandbox "
        "checks every request against it and will not run without it. Looked in: "
        + ", ".join(str(root) for root in contract_candidates())
    )


@dataclass(frozen=True)
class Problem:
    """Why WordPress would refuse a request: its error code, message and the argument it is about."""

    status: int
    code: str
    message: str
    params: Mapping[str, str] | list[str] | None = None

    def body(self) -> dict:
        data: dict[str, Any] = {"status": self.status}
        if self.params is not None:
            data["params"] = self.params
        return {"code": self.code, "message": self.message, "data": data}


@dataclass(frozen=True)
class Route:
    key: str  # "/wc/v3/products/(?P<id>[\d]+)"
    pattern: re.Pattern
    endpoints: tuple[tuple[frozenset[str], Mapping[str, Any]], ...]

    def args_for(self, method: str) -> Mapping[str, Any] | None:
        for methods, args in self.endpoints:
            if method in methods:
                return args
        return None


class RouteIndex:
    """The route index, matched and checked."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        routes = []
        for key, route in document["routes"].items():
            endpoints = []
            for endpoint in route.get("endpoints", []):
                args = endpoint.get("args") or {}
                endpoints.append((frozenset(endpoint.get("methods") or []), args if isinstance(args, dict) else {}))
            routes.append(Route(key, re.compile(key), tuple(endpoints)))
        self.routes = routes

    @classmethod
    def load(cls, path: Path | None = None) -> RouteIndex:
        return cls(json.loads((path or index_path()).read_text()))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str], Mapping[str, Any]] | Problem:
        """The route and endpoint args for `path` under /wp-json (e.g. "/wc/v3/products/12")."""
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            args = route.args_for(method)
            if args is None:
                continue  # another route may take this method (WordPress tries them all)
            return route, found.groupdict(), args
        return Problem(404, "rest_no_route", "No route was found matching the URL and request method.")

    def check(
        self, method: str, route: Route, args: Mapping[str, Any], query: Mapping[str, str], body: Any
    ) -> Problem | None:
        """Check the query (and, for writes, the JSON body) against the endpoint's args."""
        declared = dict(args)
        declared.update(LATER_QUERY_ARGS.get((method, route.key), {}))
        problems: dict[str, str] = {}
        for name, value in query.items():
            if name in AUTH_ARGS:
                continue
            spec = declared.get(name)
            if spec is None:
                problems[name] = f"{name} is not an argument of {method} {route.key} in the route index."
                continue
            problem = check_value(name, coerce_query(value, spec), spec, from_query=True)
            if problem:
                problems[name] = problem
        if method != "GET":
            if BATCH_ROUTE.fullmatch(route.key):
                problems.update(self._check_batch(route, body))
            elif body is not None:
                if not isinstance(body, dict):
                    return Problem(400, "rest_invalid_json", "The body must be a JSON object.")
                for name, value in body.items():
                    spec = declared.get(name)
                    if spec is None:
                        problems[name] = f"{name} is not an argument of {method} {route.key} in the route index."
                        continue
                    if spec.get("readonly"):
                        problems[name] = f"{name} is read-only."
                        continue
                    problem = check_value(name, value, spec)
                    if problem:
                        problems[name] = problem
        if problems:
            return Problem(400, "rest_invalid_param", f"Invalid parameter(s): {', '.join(problems)}", problems)
        missing = [
            name
            for name, spec in declared.items()
            if spec.get("required") and name not in query and not (isinstance(body, dict) and name in body)
        ]
        if missing and not BATCH_ROUTE.fullmatch(route.key):
            return Problem(400, "rest_missing_callback_param", f"Missing parameter(s): {', '.join(missing)}", missing)
        return None

    def _check_batch(self, route: Route, body: Any) -> dict[str, str]:
        """A batch body is {create: [...], update: [...], delete: [ids]}; each object is checked against the
        item route's POST (create) or PUT (update) args."""
        if not isinstance(body, dict):
            return {"body": "A batch body must be a JSON object with create, update and/or delete."}
        problems: dict[str, str] = {}
        for name in body:
            if name not in ("create", "update", "delete"):
                problems[name] = f"{name} is not a batch operation (create, update, delete)."
        collection = route.key[: -len("/batch")]
        item_key = collection + r"/(?P<id>[\d]+)"
        create_args = next((r.args_for("POST") for r in self.routes if r.key == collection), None) or {}
        update_args = next((r.args_for("PUT") for r in self.routes if r.key == item_key), None) or {}
        for operation, args in (("create", create_args), ("update", update_args)):
            objects = body.get(operation, [])
            if not isinstance(objects, list):
                problems[operation] = f"{operation} must be a list of objects."
                continue
            for position, obj in enumerate(objects):
                if not isinstance(obj, dict):
                    problems[f"{operation}[{position}]"] = "must be an object."
                    continue
                if operation == "update" and not isinstance(obj.get("id"), int):
                    problems[f"update[{position}].id"] = "update objects need an integer id."
                for name, value in obj.items():
                    if operation == "update" and name == "id":
                        continue
                    spec = args.get(name)
                    if spec is None:
                        problems[f"{operation}[{position}].{name}"] = f"{name} is not a product argument."
                        continue
                    problem = check_value(name, value, spec)
                    if problem:
                        problems[f"{operation}[{position}].{name}"] = problem
        delete = body.get("delete", [])
        if not isinstance(delete, list) or not all(isinstance(i, int) for i in delete):
            problems["delete"] = "delete must be a list of integer ids."
        return problems


def coerce_query(value: str, spec: Mapping[str, Any]) -> Any:
    """A query-string value as WordPress reads it for the declared type."""
    kind = spec.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false", "1", "0"):
        return value in ("true", "1")
    if kind == "array":
        items = [v for v in re.split(r"[,\s]+", value) if v]
        item_spec = spec.get("items") or {}
        return [coerce_query(v, item_spec) if item_spec else v for v in items]
    return value


def check_value(name: str, value: Any, spec: Mapping[str, Any], *, from_query: bool = False) -> str:
    """'' when the value fits the declared type and enum, else WordPress's sentence for it."""
    kind = spec.get("type")
    if kind == "object" and "items" in spec:  # the index's `images`: really a list of objects
        kind = "array"
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "date-time": lambda v: v is None or (isinstance(v, str) and _is_datetime(v)),
        "mixed": lambda v: True,
        None: lambda v: True,
    }.get(kind, lambda v: True)
    if not ok(value):
        return f"{name} is not of type {kind}."
    enum = spec.get("enum")
    if enum and value not in enum:
        return f"{name} is not one of {', '.join(map(str, enum))}."
    if kind == "array":
        item_spec = spec.get("items") or {}
        for position, item in enumerate(value):
            problem = check_value(f"{name}[{position}]", item, item_spec, from_query=from_query) if item_spec else ""
            if problem:
                return problem
            if isinstance(item, dict) and item_spec.get("properties"):
                for prop, prop_value in item.items():
                    prop_spec = item_spec["properties"].get(prop)
                    if prop_spec is None:
                        return f"{name}[{position}].{prop} is not a property of {name}."
                    if prop_spec.get("readonly"):
                        return f"{name}[{position}].{prop} is read-only."
                    problem = check_value(f"{name}[{position}].{prop}", prop_value, prop_spec)
                    if problem:
                        return problem
    return ""


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@cache
def route_index() -> RouteIndex:
    return RouteIndex.load()
