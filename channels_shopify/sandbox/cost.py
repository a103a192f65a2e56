"""Query cost the way Shopify computes it, and its leaky bucket.

Shopify prices a document before running it (requested cost) and refunds what it did not
use (actual cost): an object field costs 1, a scalar or enum 0, a connection 2 plus `first`
(or `last`) times the cost of one node, a mutation 10 plus what it returns. A document that
asks for more than 1,000 points is refused outright; otherwise the requested points must be
in the bucket, which refills at `restore_rate` points a second up to `maximum`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.values import get_argument_values, get_variable_values

MAX_QUERY_COST = 1000
MUTATION_COST = 10


def _named(schema: GraphQLSchema, name: str):
    return schema.get_type(name)


def _cost(schema, parent_type, selection_set, fragments, variables, data) -> float:
    """The cost of a selection; with `data`, the actual cost (connections counted by the nodes returned)."""
    total = 0.0
    if selection_set is None:
        return total
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            fields = getattr(parent_type, "fields", None) or {}
            if name.startswith("__") or name not in fields:
                continue
            field = fields[name]
            named = get_named_type(field.type)
            if is_leaf_type(named):
                continue
            key = selection.alias.value if selection.alias else name
            sub = data.get(key) if isinstance(data, Mapping) else None
            if named.name.endswith("Connection"):
                args = get_argument_values(field, selection, variables)
                node_type = _node_type(named)
                if data is None:
                    per_node = _connection_inner(schema, named, node_type, selection, fragments, variables, None)
                    total += 2 + float(args.get("first") or args.get("last") or 0) * per_node
                else:
                    total += 2
                    for node in _nodes(sub):
                        total += _connection_inner(schema, named, node_type, selection, fragments, variables, node)
                continue
            if data is not None and is_list_type(get_nullable_type(field.type)):
                for element in sub or ():
                    total += 1 + _cost(schema, named, selection.selection_set, fragments, variables, element)
                continue
            if data is not None and sub is None:
                total += 1
                continue
            total += 1 + _cost(schema, named, selection.selection_set, fragments, variables, sub)
        elif isinstance(selection, InlineFragmentNode):
            target = _named(schema, selection.type_condition.name.value) if selection.type_condition else parent_type
            if data is not None and isinstance(data, Mapping) and data.get("__typename") not in (None, target.name):
                continue
            total += _cost(schema, target, selection.selection_set, fragments, variables, data)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            target = _named(schema, fragment.type_condition.name.value)
            total += _cost(schema, target, fragment.selection_set, fragments, variables, data)
    return total


def _node_type(connection_type):
    return get_named_type(connection_type.fields["nodes"].type) if "nodes" in connection_type.fields else None


def _nodes(connection: Any) -> list:
    if not isinstance(connection, Mapping):
        return []
    if isinstance(connection.get("nodes"), list):
        return connection["nodes"]
    return [edge.get("node") for edge in connection.get("edges") or () if isinstance(edge, Mapping)]


def _connection_inner(schema, connection_type, node_type, selection, fragments, variables, node) -> float:
    """One node's cost inside a connection: what is selected under `nodes` or `edges { node }`."""
    total = 0.0
    for inner in selection.selection_set.selections if selection.selection_set else ():
        if not isinstance(inner, FieldNode):
            continue
        if inner.name.value == "nodes":
            total += _cost(schema, node_type, inner.selection_set, fragments, variables, node)
        elif inner.name.value == "edges":
            for edge_field in inner.selection_set.selections if inner.selection_set else ():
                if isinstance(edge_field, FieldNode) and edge_field.name.value == "node":
                    total += _cost(schema, node_type, edge_field.selection_set, fragments, variables, node)
    return max(total, 1.0)


def document_cost(
    schema: GraphQLSchema, document, operation_name: str | None, variables: Mapping, data: Any = None
) -> float:
    """Requested cost (data None) or actual cost (the data the execution returned) of one operation."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next((o for o in operations if o.name and o.name.value == operation_name), operations[0])
    coerced = get_variable_values(schema, operation.variable_definitions or (), dict(variables or {}))
    if isinstance(coerced, list):  # the variables do not fit the document: Shopify answers these errors
        raise coerced[0]
    variables = coerced
    if operation.operation.value == "mutation":
        root = schema.mutation_type
        total = 0.0
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            field = root.fields.get(selection.name.value)
            if field is None:
                continue
            key = selection.alias.value if selection.alias else selection.name.value
            sub = data.get(key) if isinstance(data, Mapping) else None
            named = get_named_type(field.type)
            total += MUTATION_COST + _cost(
                schema, named, selection.selection_set, fragments, variables, sub if data is not None else None
            )
        return total
    return _cost(schema, schema.query_type, operation.selection_set, fragments, variables, data)


class LeakyBucket:
    """Shopify's per-store bucket: `maximum` points, refilled at `restore_rate` a second."""

    def __init__(
        self, maximum: float = 2000.0, restore_rate: float = 100.0, clock: Callable[[], float] = time.monotonic
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._available = float(maximum)
        self._at = clock()
        self.lowest = float(maximum)
        self.throttled = 0
        self.spent = 0.0

    def configure(self, maximum: float, restore_rate: float) -> None:
        with self._lock:
            self.maximum, self.restore_rate = float(maximum), float(restore_rate)
            self._available, self._at, self.lowest = float(maximum), self._clock(), float(maximum)
            self.throttled, self.spent = 0, 0.0

    def _refill(self) -> float:
        now = self._clock()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now
        return self._available

    def take(self, requested: float) -> tuple[bool, float]:
        """Book `requested` points if the bucket holds them: (taken, available afterwards or now)."""
        with self._lock:
            available = self._refill()
            if requested > available:
                self.throttled += 1
                return False, available
            self._available = available - requested
            self.lowest = min(self.lowest, self._available)
            return True, self._available

    def refund(self, points: float) -> float:
        with self._lock:
            self._refill()
            self._available = min(self.maximum, self._available + max(0.0, points))
            return self._available

    def status(self) -> dict[str, float]:
        with self._lock:
            available = self._refill()
        return {"maximumAvailable": self.maximum, "currentlyAvailable": available, "restoreRate": self.restore_rate}
