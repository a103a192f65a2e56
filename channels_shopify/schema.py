"""Shopify's Admin GraphQL schema (the official introspection file), loaded with graphql-core.

Used by the loopback sandbox (it validates and executes every document against it) and by
the tests (every document the client can send is validated against it). Not used in
production requests: Shopify validates those itself.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

import graphql
from django.conf import settings

SCHEMA_FILE = "admin_schema_{version}.json.gz"
_lock = threading.Lock()
_schemas: dict[str, graphql.GraphQLSchema] = {}


def contract_dirs() -> list[Path]:
    """Where the official contracts are looked for: $SHOPIFY_CONTRACTS_DIR, the repository's contracts/, the shared workspace."""
    base = Path(settings.BASE_DIR)
    dirs = []
    if os.environ.get("SHOPIFY_CONTRACTS_DIR"):
        dirs.append(Path(os.environ["SHOPIFY_CONTRACTS_DIR"]))
    dirs += [base / "contracts" / "shopify", base.parent / "shared" / "contracts" / "shopify"]
    return dirs


def schema_path(version: str = "2025-01") -> Path:
    """The schema file for an API version; FileNotFoundError (naming where it looked) when there is none."""
    name = SCHEMA_FILE.format(version=version)
    for folder in contract_dirs():
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{name} not found in: {', '.join(str(d) for d in contract_dirs())}")


def admin_schema(version: str = "2025-01") -> graphql.GraphQLSchema:
    """The Admin schema of an API version, built once per process (about 0.5 s)."""
    with _lock:
        schema = _schemas.get(version)
        if schema is None:
            with gzip.open(schema_path(version)) as handle:
                schema = graphql.build_client_schema(json.load(handle)["data"])
            # Shopify's own schema breaks two of graphql-core's schema-definition rules (a
            # deprecated field implementing an interface field that is not). Documents are
            # still validated against it in full; only the schema's self-check is skipped.
            schema._validation_errors = []
            _schemas[version] = schema
        return schema


def validation_errors(document: str, version: str = "2025-01") -> list[str]:
    """What Shopify would reject in a document (unknown fields, wrong argument types...), as messages."""
    try:
        ast = graphql.parse(document)
    except graphql.GraphQLError as error:
        return [error.message]
    return [error.message for error in graphql.validate(admin_schema(version), ast)]
