"""Amazon's Swagger 2.0 models as a checker: which operation a request is, whether its path,
query and body match the model, whether an answer matches its response schema, the usage plan
(rate, burst) each operation documents, and the models' own static sandbox cases.

Used by the loopback sandbox on every request and by the tests on what the client sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator

MODEL_FILES = (
    "listingsItems_2021-08-01.json",
    "orders_2026-01-01.json",
    "feeds_2021-06-30.json",
    "ordersV0.json",
    "notifications.json",
    "tokens_2021-03-01.json",
)
_USAGE = re.compile(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern
    spec: Mapping[str, Any]
    parameters: tuple[Mapping[str, Any], ...]
    definitions: Mapping[str, Any]
    names: tuple[str, ...] = ()

    @property
    def usage_plan(self) -> tuple[float, int] | None:
        found = _USAGE.search(self.spec.get("description") or "")
        return (float(found.group(1)), int(found.group(2))) if found else None


class SwaggerModels:
    """Every operation of the models in `directory`."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.operations: list[Operation] = []
        self._validators: dict[tuple[str, str, str], Draft4Validator] = {}
        for name in MODEL_FILES:
            path = self.directory / name
            if not path.exists():
                raise FileNotFoundError(f"Amazon's model {path} is missing (contracts/amazon/models/).")
            model = json.loads(path.read_text())
            definitions = model.get("definitions") or {}
            for template, item in model["paths"].items():
                shared = list(item.get("parameters") or [])
                for method, spec in item.items():
                    if method not in ("get", "put", "post", "patch", "delete"):
                        continue
                    regex = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
                    names = re.findall(r"\{([^}]+)\}", template)
                    self.operations.append(
                        Operation(
                            operation_id=spec["operationId"],
                            method=method.upper(),
                            template=template,
                            pattern=re.compile(regex),
                            spec=spec,
                            parameters=tuple(shared + list(spec.get("parameters") or [])),
                            definitions=definitions,
                            names=tuple(names),
                        )
                    )
        # Literal segments win over path parameters (…/orders/{orderId} vs …/orders/{orderId}/address).
        self.operations.sort(key=lambda op: (op.template.count("{"), -len(op.template)))

    def _validator(self, op: Operation, key: str, schema: Mapping[str, Any]) -> Draft4Validator:
        cached = self._validators.get((op.operation_id, op.template, key))
        if cached is None:
            cached = Draft4Validator({"definitions": op.definitions, **schema})
            self._validators[(op.operation_id, op.template, key)] = cached
        return cached

    def by_id(self, operation_id: str, template_prefix: str = "") -> Operation:
        for op in self.operations:
            if op.operation_id == operation_id and op.template.startswith(template_prefix):
                return op
        raise KeyError(operation_id)

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            if op.method != method:
                continue
            found = op.pattern.match(path)
            if found:
                return op, dict(zip(op.names, (unquote(v) for v in found.groups()), strict=True))
        return None

    # --- checks --------------------------------------------------------------------

    def request_problems(
        self, op: Operation, path_params: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> list[str]:
        """Where a request departs from the model: unknown or missing parameters, bad values, bad body."""
        found: list[str] = []
        declared = {p["name"] for p in op.parameters if p.get("in") == "query"}
        for name in query:
            if name not in declared:
                found.append(f"query parameter {name!r} is not in the model of {op.operation_id}")
        for param in op.parameters:
            where, name = param.get("in"), param.get("name")
            if where == "body":
                if body is None:
                    if param.get("required"):
                        found.append(f"{op.operation_id} needs a JSON body")
                    continue
                for error in self._validator(op, "body", param["schema"]).iter_errors(body):
                    where_ = "/".join(str(p) for p in error.absolute_path) or "(body)"
                    found.append(f"body {where_}: {error.message}")
                continue
            source = path_params if where == "path" else query if where == "query" else None
            if source is None:
                continue
            if name not in source:
                if param.get("required"):
                    found.append(f"{where} parameter {name!r} is required")
                continue
            found.extend(_value_problems(param, source[name]))
        return found

    def response_problems(self, op: Operation, status: int, body: Any) -> list[str]:
        answer = (op.spec.get("responses") or {}).get(str(status))
        if answer is None:
            return [f"{op.operation_id} documents no {status} answer"]
        schema = answer.get("schema")
        if not schema or body in (None, b"", ""):
            return []
        validator = self._validator(op, str(status), schema)
        return [
            f"answer {'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
            for e in validator.iter_errors(body)
        ]

    def static_answer(self, op: Operation, params: Mapping[str, Any]) -> tuple[int, Any] | None:
        """The model's own sandbox case whose every named parameter (body aside) equals this request's."""
        for status, answer in (op.spec.get("responses") or {}).items():
            for case in ((answer.get("x-amzn-api-sandbox") or {}).get("static")) or []:
                wanted = {k: v.get("value") for k, v in (case.get("request") or {}).get("parameters", {}).items()}
                wanted.pop("body", None)
                if not wanted:
                    continue
                if all(_same(params.get(name), value) for name, value in wanted.items()):
                    return int(status), case.get("response")
        return None


def _same(given: Any, wanted: Any) -> bool:
    if given is None:
        return False
    if isinstance(wanted, list):
        values = given if isinstance(given, list) else str(given).split(",")
        return [str(v) for v in values] == [str(w) for w in wanted]
    return str(given) == str(wanted)


def _value_problems(param: Mapping[str, Any], raw: str) -> list[str]:
    name, kind = param["name"], param.get("type")
    values = [v for v in str(raw).split(",")] if kind == "array" else [raw]
    item = (param.get("items") or {}) if kind == "array" else param
    found = []
    if kind == "array" and param.get("maxItems") and len(values) > param["maxItems"]:
        found.append(f"{name}: at most {param['maxItems']} values")
    for value in values:
        if item.get("enum") and value not in item["enum"]:
            found.append(f"{name}: {value!r} is not one of {item['enum']}")
        if item.get("type") == "integer":
            try:
                number = int(value)
            except ValueError:
                found.append(f"{name}: {value!r} is not an integer")
                continue
            if "maximum" in item and number > item["maximum"]:
                found.append(f"{name}: {number} is above {item['maximum']}")
            if "minimum" in item and number < item["minimum"]:
                found.append(f"{name}: {number} is below {item['minimum']}")
        if item.get("maxLength") and len(value) > item["maxLength"]:
            found.append(f"{name}: longer than {item['maxLength']}")
    return found
