"""Pagination that stays fast on large catalogues, shared by the admin and the API.

Counting every matching row on every page view costs a full scan at 100,000 items. The
paginator counts exactly up to INVENTORY_EXACT_COUNT_LIMIT rows (a bounded query) and,
past that, on PostgreSQL, uses the planner's row estimate for the same query.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from rest_framework import pagination


def estimated_count(queryset) -> int | None:
    """The PostgreSQL planner's row estimate for a queryset, or None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeTablePaginator(Paginator):
    """Exact counts for small results, a planner estimate past the limit."""

    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        limit = settings.INVENTORY_EXACT_COUNT_LIMIT
        object_list = self.object_list
        if not hasattr(object_list, "query"):
            return len(object_list)
        bounded = object_list.order_by()[: limit + 1].count()
        if bounded <= limit:
            return bounded
        estimate = estimated_count(object_list)
        if estimate is None:
            return object_list.count()
        self.count_is_estimate = True
        return max(estimate, limit + 1)


class PageNumberPagination(pagination.PageNumberPagination):
    django_paginator_class = LargeTablePaginator
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_is_estimate"] = self.page.paginator.count_is_estimate
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_is_estimate"] = {"type": "boolean"}
        return schema
