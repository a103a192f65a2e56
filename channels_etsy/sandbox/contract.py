"""Etsy's OpenAPI file as a request and response checker (jsonschema), for the sandbox and the tests.

OpenAPI 3.0 schemas are JSON Schema draft 4 plus `nullable`; `nullable: true` becomes a
`null` alternative here. Requests are checked the way a server built from the file would:
path and query parameters (typed from their strings), and bodies by content type:
form-encoded and multipart fields typed from the operation's schema (arrays as repeated
keys, OpenAPI's default form style), JSON as is. Unknown parameters and fields are errors.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft4Validator

SPEC_PATH = Path(__file__).resolve().parents[2] / "contracts" / "etsy" / "etsy-openapi-v3.json"
METHODS = ("get", "post", "put", "patch", "delete")


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    pattern: re.Pattern
    spec: dict

    @property
    def scopes(self) -> tuple[str, ...]:
        for requirement in self.spec.get("security") or []:
            if "oauth2" in requirement:
                return tuple(requirement["oauth2"])
        return ()

    @property
    def needs_token(self) -> bool:
        return any("oauth2" in r for r in self.spec.get("security") or [])


@dataclass
class Checked:
    operation: Operation | None
    errors: list[str] = field(default_factory=list)
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    files: dict[str, bytes] = field(default_factory=dict)


class EtsyContract:
    def __init__(self, path: Path = SPEC_PATH) -> None:
        raw = json.loads(path.read_text())
        self.spec = _nullable(raw)
        self.components = self.spec["components"]
        self.operations: list[Operation] = []
        for template, item in self.spec["paths"].items():
            shared = item.get("parameters") or []
            for method in METHODS:
                if method not in item:
                    continue
                op = copy.deepcopy(item[method])
                op["parameters"] = [*shared, *(op.get("parameters") or [])]
                regex = "^" + re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", template) + "$"
                self.operations.append(Operation(method.upper(), template, op["operationId"], re.compile(regex), op))
        # literal paths before templated ones (/listings/batch before /listings/{listing_id})
        self.operations.sort(key=lambda o: o.template.count("{"))
        self._validators: dict[int, Draft4Validator] = {}

    def operation(self, operation_id: str) -> Operation:
        return next(o for o in self.operations if o.operation_id == operation_id)

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str]]:
        for op in self.operations:
            if op.method == method.upper():
                found = op.pattern.match(path)
                if found:
                    return op, found.groupdict()
        return None, {}

    def validator(self, schema: Mapping) -> Draft4Validator:
        key = id(schema)
        if key not in self._validators:
            self._validators[key] = Draft4Validator({**schema, "components": self.components})
        return self._validators[key]

    def errors(self, schema: Mapping, value: Any, where: str) -> list[str]:
        return [
            f"{where}{'.' + '.'.join(str(p) for p in e.absolute_path) if e.absolute_path else ''}: {e.message}"
            for e in self.validator(schema).iter_errors(value)
        ][:10]

    # --- requests ---------------------------------------------------------------------

    def check_request(
        self, method: str, path: str, query: Sequence[tuple[str, str]], content_type: str, body: bytes
    ) -> Checked:
        op, path_values = self.match(method, path)
        if op is None:
            return Checked(None, [f"{method} {path} is not an operation of the spec"])
        checked = Checked(op)
        params = op.spec["parameters"]
        for param in (p for p in params if p["in"] == "path"):
            value, errors = _typed(param["schema"], [path_values.get(param["name"], "")])
            checked.errors += errors or self.errors(param["schema"], value, f"path {param['name']}")
            checked.path_params[param["name"]] = value
        known = {p["name"]: p for p in params if p["in"] == "query"}
        grouped: dict[str, list[str]] = {}
        for name, value in query:
            grouped.setdefault(name, []).append(value)
        for name, values in grouped.items():
            if name not in known:
                checked.errors.append(f"query {name}: not a parameter of {op.operation_id}")
                continue
            value, errors = _typed(known[name]["schema"], values)
            checked.errors += errors or self.errors(known[name]["schema"], value, f"query {name}")
            checked.query[name] = value
        for name, param in known.items():
            if param.get("required") and name not in grouped:
                checked.errors.append(f"query {name}: required")
        content = (op.spec.get("requestBody") or {}).get("content") or {}
        if not content:
            if body.strip():
                checked.errors.append(f"{op.operation_id} takes no body")
            return checked
        media = content_type.split(";")[0].strip().lower()
        if media not in content:
            checked.errors.append(f"body: {op.operation_id} takes {', '.join(content)}, not {media or 'nothing'}")
            return checked
        schema = content[media]["schema"]
        if media == "application/json":
            try:
                checked.body = json.loads(body or b"null")
            except ValueError:
                checked.errors.append("body: not JSON")
                return checked
        elif media == "application/x-www-form-urlencoded":
            checked.body, errors = _form(schema, parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            checked.errors += errors
        else:  # multipart/form-data
            pairs, checked.files, errors = _multipart(content_type, body)
            checked.errors += errors
            checked.body, errors = _form(schema, pairs, files=checked.files)
            checked.errors += errors
        checked.errors += self.errors(schema, checked.body, "body")
        return checked

    # --- responses --------------------------------------------------------------------

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        responses = op.spec.get("responses") or {}
        answer = responses.get(str(status)) or responses.get("default")
        if answer is None:
            return [f"{op.operation_id} does not answer {status} in the spec"]
        content = answer.get("content") or {}
        if "application/json" not in content:
            return [] if body in (None, b"", "") else [f"{op.operation_id} {status} has no body in the spec"]
        return self.errors(content["application/json"]["schema"], body, f"{op.operation_id} {status}")


def _type_of(schema: Mapping) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and "anyOf" in schema:
        return next((_type_of(s) for s in schema["anyOf"] if s.get("type") != "null"), "string")
    return kind or "string"


def _scalar(schema: Mapping, text: str) -> tuple[Any, str | None]:
    kind = _type_of(schema)
    if kind == "integer":
        return (int(text), None) if re.fullmatch(r"-?\d+", text) else (text, f"{text!r} is not an integer")
    if kind == "number":
        try:
            return float(text), None
        except ValueError:
            return text, f"{text!r} is not a number"
    if kind == "boolean":
        if text in ("true", "false"):
            return text == "true", None
        return text, f"{text!r} is not a boolean (true or false)"
    return text, None


def _typed(schema: Mapping, values: list[str]) -> tuple[Any, list[str]]:
    if _type_of(schema) == "array":
        items = schema.get("items") or {}
        out, errors = [], []
        for value in values:
            one, error = _scalar(items, value)
            out.append(one)
            if error:
                errors.append(error)
        return out, errors
    if len(values) > 1:
        return values, ["given more than once"]
    value, error = _scalar(schema, values[0])
    return value, [error] if error else []


def _form(schema: Mapping, pairs: Sequence[tuple[str, str]], files: Mapping[str, bytes] | None = None):
    props = schema.get("properties") or {}
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    body: dict[str, Any] = {}
    errors: list[str] = []
    for name, values in grouped.items():
        if name not in props:
            errors.append(f"body {name}: not a field of this operation")
            continue
        value, problems = _typed(props[name], values)
        errors += [f"body {name}: {p}" for p in problems]
        body[name] = value
    for name in files or {}:
        if name not in props:
            errors.append(f"body {name}: not a field of this operation")
        else:
            body[name] = "<binary>"
    return body, errors


def _multipart(content_type: str, body: bytes) -> tuple[list[tuple[str, str]], dict[str, bytes], list[str]]:
    if "boundary=" not in content_type:
        return [], {}, ["multipart body without a boundary"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    pairs, files = [], {}
    if not message.is_multipart():
        return [], {}, ["not a multipart body"]
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        if part.get_filename():
            files[name] = part.get_payload(decode=True) or b""
        else:
            pairs.append((name, (part.get_payload(decode=True) or b"").decode("utf-8", "replace")))
    return pairs, files, []


@cache
def contract() -> EtsyContract:
    return EtsyContract()
