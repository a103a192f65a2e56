"""The HTTP load of bench/load.py --http: the API by token and the admin by session, as staff use them.

Run by bench/load.py (headless, a fixed request rate); not on its own. BENCH_TOKEN is an API token of
the shop, BENCH_ADMIN_USER / BENCH_ADMIN_PASSWORD a staff login of the same shop, and
BENCH_RATE_PER_USER the requests each simulated person makes per second (locust's
constant_throughput), so users x rate = the offered request rate.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant_throughput, task

RATE = float(os.environ.get("BENCH_RATE_PER_USER", "1"))


class ApiUser(HttpUser):
    """A script or integration reading and searching the catalogue over the API."""

    weight = 3
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {os.environ['BENCH_TOKEN']}"

    @task(4)
    def items(self) -> None:
        self.client.get("/api/v1/items/?page_size=50", name="GET /api/v1/items/")

    @task(2)
    def search(self) -> None:
        self.client.get(f"/api/v1/items/?search=guitar+{random.randint(1, 999)}", name="GET /api/v1/items/?search")

    @task(2)
    def listings(self) -> None:
        self.client.get("/api/v1/listings/?page_size=50", name="GET /api/v1/listings/")

    @task(1)
    def health(self) -> None:
        self.client.get("/health/ready/", name="GET /health/ready/")


class AdminUser(HttpUser):
    """A person in the admin: the items list, a search, an item's change page."""

    weight = 1
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.client.get("/admin/login/", name="GET /admin/login/")
        self.client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": os.environ["BENCH_ADMIN_USER"],
                "password": os.environ["BENCH_ADMIN_PASSWORD"],
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
                "next": "/admin/",
            },
            headers={"Referer": self.host + "/admin/login/"},
            name="POST /admin/login/",
        )
        self.item_ids = [int(x) for x in os.environ.get("BENCH_ITEM_IDS", "").split(",") if x]

    @task(3)
    def changelist(self) -> None:
        with self.client.get("/admin/inventory/item/", name="GET /admin/inventory/item/", catch_response=True) as r:
            if "/admin/login/" in r.url:  # a lost session would otherwise count as a fast success
                r.failure("redirected to the login page")

    @task(1)
    def search(self) -> None:
        self.client.get(f"/admin/inventory/item/?q=guitar+{random.randint(1, 999)}", name="GET /admin/…/item/?q")

    @task(2)
    def change_page(self) -> None:
        if self.item_ids:
            self.client.get(
                f"/admin/inventory/item/{random.choice(self.item_ids)}/change/", name="GET /admin/…/item/<id>/change/"
            )
