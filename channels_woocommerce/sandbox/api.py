"""The loopback shop's wc/v3 routes: a route index key and method -> the store's operation, with paging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .store import error

API = "/wp-json"


class ShopApi:
    """Part of WooSandbox: what each route of the index does here."""

    def _route(
        self, method: str, key: str, path_args: dict[str, str], query: dict[str, Any], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        store = self.store
        body = body if isinstance(body, dict) else {}
        item_id = int(path_args["id"]) if path_args.get("id", "").isdigit() else None
        if key == "/wc/v3":
            return 200, self.index.document, {}
        if key == "/wc/v3/products":
            if method == "GET":
                return self._page(store.list_products(query), query, "/wc/v3/products")
            status, out = store.create_product(body)
            if status == 201:
                self._deliver_later("product.created", out)
            return status, out, {}
        if key == r"/wc/v3/products/(?P<id>[\d]+)":
            if method == "GET":
                return (*store.get_product(item_id), {})
            if method == "DELETE":
                status, out = store.delete_product(item_id, force=query.get("force") is True)
                if status == 200:
                    self._deliver_later("product.deleted", {"id": item_id})
                return status, out, {}
            status, out = store.update_product(item_id, body)
            if status == 200:
                self._deliver_later("product.updated", out)
            return status, out, {}
        if key == "/wc/v3/products/batch":
            status, out = store.batch(body)
            for product in out.get("update", []) if status == 200 else []:
                if "error" not in product:
                    self._deliver_later("product.updated", product)
            return status, out, {}
        if key == "/wc/v3/products/categories" and method == "GET":
            cats = [
                {"id": i, "name": n, "slug": n.lower().replace(" ", "-"), "parent": 0, "count": 0}
                for i, n in sorted(store.categories.items())
            ]
            return self._page(cats, query, "/wc/v3/products/categories")
        if key == "/wc/v3/orders" and method == "GET":
            return self._page(store.list_orders(query), query, "/wc/v3/orders")
        if key == r"/wc/v3/orders/(?P<id>[\d]+)":
            if method == "GET":
                return (*store.get_order(item_id), {})
            if method in ("PUT", "POST", "PATCH"):
                status, out = store.update_order(item_id, body)
                if status == 200:
                    self._deliver_later("order.updated", out)
                return status, out, {}
        if key == r"/wc/v3/orders/(?P<order_id>[\d]+)/notes":
            if method == "GET":
                with store.lock:
                    order = store.orders.get(int(path_args["order_id"]))
                    if order is None:
                        return (*error(404, "woocommerce_rest_order_invalid_id", "Invalid order ID."), {})
                    return 200, [dict(note) for note in reversed(order.get("_notes", []))], {}
            return (*store.add_order_note(int(path_args["order_id"]), body), {})
        if key == "/wc/v3/webhooks":
            if method == "GET":
                with store.lock:
                    hooks = [store.render_webhook(h) for h in store.webhooks.values()]
                status_filter = query.get("status", "all")
                if status_filter != "all":
                    hooks = [h for h in hooks if h["status"] == status_filter]
                return self._page(hooks, query, "/wc/v3/webhooks")
            status, out = store.create_webhook(body)
            if status == 201:
                self._ping(out["id"])  # the ping goes out before the answer, as WooCommerce does on creation
            return status, out, {}
        if key == r"/wc/v3/webhooks/(?P<id>[\d]+)":
            if method == "GET":
                with store.lock:
                    hook = store.webhooks.get(item_id)
                    if hook is None:
                        return (*error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID."), {})
                    return 200, store.render_webhook(hook), {}
            if method in ("PUT", "POST", "PATCH"):
                return (*store.update_webhook(item_id, body), {})
        if key == r"/wc/v3/settings/(?P<group_id>[\w-]+)/(?P<id>[\w-]+)" and method == "GET":
            if path_args.get("group_id") == "general" and path_args.get("id") == "woocommerce_currency":
                return (
                    200,
                    {
                        "id": "woocommerce_currency",
                        "label": "Currency",
                        "type": "select",
                        "default": "USD",
                        "value": store.currency,
                        "group_id": "general",
                    },
                    {},
                )
            return (*error(404, "rest_setting_setting_invalid", "Invalid setting."), {})
        return (
            *error(
                501,
                "sandbox_not_implemented",
                f"The loopback shop does not implement {method} {key} (the route index allows it).",
            ),
            {},
        )

    def _page(self, items: list, query: Mapping[str, Any], route: str) -> tuple[int, Any, dict[str, str]]:
        per_page = query.get("per_page", 10)
        page = query.get("page", 1)
        if not isinstance(per_page, int) or not 1 <= per_page <= 100:
            return (
                *error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): per_page",
                    params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
                ),
                {},
            )
        if not isinstance(page, int) or page < 1:
            return (
                *error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): page",
                    params={"page": "page must be greater than or equal to 1"},
                ),
                {},
            )
        total = len(items)
        pages = max(1, -(-total // per_page)) if total else 0
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{self.site_url}{API}{route}"
        if page < pages:
            links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
        if page > 1:
            links.append(f'<{base}?{urlencode({"page": page - 1, "per_page": per_page})}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, chunk, headers
