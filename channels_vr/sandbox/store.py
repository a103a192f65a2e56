"""The loopback V&R site's state: the dealer's items, sessions, form tokens, switches and request log."""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .. import mappers

DEFAULT_USERNAME = "dealer@example.com"
DEFAULT_PASSWORD = "sandbox-password"
SESSION_COOKIE = "PHPSESSID"

BRANDS = {
    "fender": 101,
    "gibson": 102,
    "martin": 103,
    "vox": 104,
    "gretsch": 105,
    "rickenbacker": 106,
    "marshall": 107,
    "ibanez": 108,
    "prs": 109,
    "guild": 110,
    "höfner": 111,
    "boss": 112,
    "mxr": 113,
    "electro-harmonix": 114,
    "ampeg": 115,
    "taylor": 116,
    "epiphone": 117,
    "music man": 118,
    "d'addario": 119,
}
# id -> (name, parent id); levels as the form's categ_level_0..3 choices.
CATEGORIES = {
    "51": ("Guitars", ""),
    "83": ("Electric solid body", "51"),
    "84": ("Semi-hollow body", "51"),
    "85": ("Flat top", "51"),
    "86": ("12 string", "51"),
    "87": ("Electric", "86"),
    "52": ("Amps", ""),
    "90": ("Combo", "52"),
    "91": ("Head", "52"),
    "53": ("Basses", ""),
    "95": ("4 string", "53"),
    "54": ("Effects", ""),
    "99": ("Overdrive", "54"),
    "55": ("Parts & accessories", ""),
    "96": ("Strings", "55"),
    "98": ("Pickups & hardware", "55"),
}
FORM_FIELDS = (
    "unique_id",
    "version",
    mappers.FIELD_BRAND,
    mappers.FIELD_MODEL,
    mappers.FIELD_YEAR,
    mappers.FIELD_DECADE,
    mappers.FIELD_FINISH,
    mappers.FIELD_DESCRIPTION,
    mappers.FIELD_PRICE,
    mappers.FIELD_EXTERNAL_ID,
    mappers.FIELD_PROCESSING_TIME,
    mappers.FIELD_PROCESSING_UNIT,
    *mappers.CATEGORY_FIELDS,
    mappers.FIELD_SHIPMENT,
    mappers.FIELD_YOUTUBE,
    "local_pickup",
    "buy_now",
    "save",
)
REQUIRED_FIELDS = (mappers.FIELD_BRAND, mappers.FIELD_MODEL, mappers.FIELD_PRICE, "categ_level_0")


@dataclass
class Switches:
    """Deterministic misbehaviour. Counters count down as they fire."""

    slow_ms: float = 0.0  # added to every page and request
    expire_after: int | None = None  # sessions expire once after this many more signed-in requests
    renamed_fields: dict[str, str] = field(default_factory=dict)  # form field name -> the name the form shows
    bot_challenge: bool = False
    fail_after_store: int = 0  # the next N item submits store the item, then answer 500
    fail_requests: int = 0  # the next N signed-in requests answer 500 and do nothing
    fail_before_store: int = 0  # the next N item submits answer 500 and store nothing
    wrong_export_columns: bool = False  # the export without its "external id" column
    error_rate: float = 0.0  # share of signed-in requests answered 500 (nothing done), drawn from `seed`
    store_then_fail_rate: float = 0.0  # share of item submits stored, then answered 500
    seed: int = 0
    buyer_before_mark_sold: int = 0  # the next N mark-sold calls find a buyer just bought the item on V&R


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox received it (a password is never kept)."""

    method: str
    path: str
    kind: str  # page, login, add, edit, export, brand, mark_sold, delete, photo, other
    fields: dict[str, str]
    files: tuple[str, ...]
    status: int
    signed_in: bool
    headers: dict[str, str]
    unknown_fields: tuple[str, ...] = ()
    product_id: str = ""


@dataclass
class Item:
    id: int
    fields: dict[str, str]
    images: list[tuple[str, str, bytes]]  # (filename, mime, data)
    version: int = 1
    sold: bool = False
    sold_by: str = ""  # "buyer" (a sale on V&R) or "dealer" (marked sold)


class VRStore:
    """The site's state. Guarded by `lock`."""

    def __init__(self, *, username: str, password: str) -> None:
        self.lock = threading.RLock()
        self.username = username
        self.password = password
        self.sessions: set[str] = set()
        self.unique_ids: set[str] = set()
        self.items: dict[int, Item] = {}
        self.next_id = 70001
        self.switches = Switches()
        self.random = random.Random(0)
        self.log: list[RecordedRequest] = []
        self.hosted_photos: dict[str, tuple[str, bytes]] = {}

    def save(self, path: str) -> None:
        """Keep the dealer's items across restarts (the demo): written whole, then renamed into place."""
        with self.lock:
            data = {
                "next_id": self.next_id,
                "items": [
                    {
                        "id": item.id,
                        "fields": item.fields,
                        "version": item.version,
                        "sold": item.sold,
                        "sold_by": item.sold_by,
                        "images": [[n, m, base64.b64encode(d).decode()] for n, m, d in item.images],
                    }
                    for item in self.items.values()
                ],
            }
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, path)

    def load(self, path: str) -> None:
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
        with self.lock:
            self.next_id = data["next_id"]
            self.items = {
                raw["id"]: Item(
                    id=raw["id"],
                    fields=raw["fields"],
                    version=raw["version"],
                    sold=raw["sold"],
                    sold_by=raw["sold_by"],
                    images=[(n, m, base64.b64decode(d)) for n, m, d in raw["images"]],
                )
                for raw in data["items"]
            }

    def issue_unique_id(self) -> str:
        token = secrets.token_hex(10)
        self.unique_ids.add(token)
        return token

    def export_row(self, item: Item, base_url: str) -> dict[str, str]:
        f = item.fields
        price = f.get(mappers.FIELD_PRICE, "")
        with_id = {
            "brand name": f.get(mappers.FIELD_BRAND, "").lower(),
            "category name": ">".join(
                CATEGORIES[c][0] for c in (f.get(name, "") for name in mappers.CATEGORY_FIELDS) if c in CATEGORIES
            ),
            "product id": str(item.id),
            "external id": f.get(mappers.FIELD_EXTERNAL_ID, ""),
            "product model name": f.get(mappers.FIELD_MODEL, ""),
            "product price": export_price(price),
            "product price notax": "",
            "product description": f.get(mappers.FIELD_DESCRIPTION, ""),
            "product year": f.get(mappers.FIELD_YEAR, ""),
            "product sold": "yes" if item.sold else "no",
            "product finish": f.get(mappers.FIELD_FINISH, ""),
            "product in collective": "no",
            "product in inventory": "yes",
            "product in reseller": "no",
            "collective discount": "0",
            "free shipping": "no",
            "buy now": "yes" if f.get("buy_now") else "no",
            "show vat": "no",
            "decade": f.get(mappers.FIELD_DECADE, ""),
            "product order": "",
            "local pickup": "yes" if f.get("local_pickup") else "no",
            "available for shipment": "yes" if f.get(mappers.FIELD_SHIPMENT) else "no",
            "processing time": f.get(mappers.FIELD_PROCESSING_TIME, ""),
            "offer discount": "0",
            "image url": "|".join(
                f"{base_url}/uploads/products/{item.id}/{n}/original.jpg" for n in range(1, len(item.images) + 1)
            ),
            "video url": f.get(mappers.FIELD_YOUTUBE, ""),
            "external link": "",
        }
        return with_id


def export_price(price: str) -> str:
    try:
        value = Decimal(price)
    except (InvalidOperation, ValueError):
        return price
    return str(int(value)) if value == value.to_integral_value() else f"{value:.2f}"
