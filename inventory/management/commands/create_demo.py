import zlib
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import account_create, staff_group_sync, staff_user_create
from billing.services.plans import plan_assign, plan_get
from inventory.demo_photos import demo_photo
from inventory.models import Source
from inventory.services import Actor, LineSpec, item_create, item_transition, order_complete, order_create
from inventory.services.photos import photo_add

# (brand, model, year, finish, category, condition, price, cost, quantity, location, state)
CATALOGUE = [
    (
        "Fender",
        "Stratocaster",
        "1964",
        "Sonic Blue",
        "Electric Guitars",
        "very_good",
        "18500",
        "14000",
        1,
        "A-01-1",
        "active",
    ),
    (
        "Gibson",
        "Les Paul Standard",
        "1959",
        "Cherry Sunburst",
        "Electric Guitars",
        "good",
        "325000",
        "280000",
        1,
        "VAULT-1",
        "active",
    ),
    ("Gibson", "ES-335", "1965", "Sunburst", "Electric Guitars", "excellent", "14900", "11000", 1, "A-01-2", "active"),
    ("Fender", "Telecaster Custom", "1972", "Black", "Electric Guitars", "good", "7800", "6000", 1, "A-02-1", "active"),
    ("Martin", "D-28", "1968", "Natural", "Acoustic Guitars", "very_good", "9500", "7200", 1, "B-01-1", "active"),
    (
        "Gretsch",
        "6120 Chet Atkins",
        "1958",
        "Western Orange",
        "Electric Guitars",
        "fair",
        "12500",
        "9000",
        1,
        "A-02-2",
        "draft",
    ),
    (
        "Rickenbacker",
        "360/12",
        "1966",
        "Fireglo",
        "Electric Guitars",
        "excellent",
        "11000",
        "8500",
        1,
        "A-03-1",
        "active",
    ),
    ("Vox", "AC30 Top Boost", "1963", "Fawn", "Amps", "good", "6500", "4800", 1, "C-01-1", "active"),
    ("Marshall", "JMP 1959 Super Lead", "1969", "Black", "Amps", "very_good", "5200", "3900", 1, "C-01-2", "active"),
    ("Fender", "Deluxe Reverb", "1966", "Blackface", "Amps", "excellent", "3400", "2500", 1, "C-02-1", "active"),
    (
        "Roland",
        "Space Echo RE-201",
        "1978",
        "Black",
        "Effects and Pedals",
        "good",
        "1450",
        "1000",
        1,
        "D-01-1",
        "active",
    ),
    (
        "Electro-Harmonix",
        "Big Muff Pi Ram's Head",
        "1974",
        "Silver",
        "Effects and Pedals",
        "very_good",
        "650",
        "420",
        1,
        "D-01-2",
        "active",
    ),
    (
        "Ibanez",
        "TS808 Tube Screamer",
        "1980",
        "Green",
        "Effects and Pedals",
        "good",
        "780",
        "500",
        1,
        "D-01-3",
        "draft",
    ),
    (
        "Boss",
        "DS-1 Distortion",
        "2024",
        "Orange",
        "Effects and Pedals",
        "brand_new",
        "69",
        "42",
        12,
        "D-02-1",
        "active",
    ),
    (
        "D'Addario",
        "EXL110 Strings 10-Pack",
        "2025",
        "Nickel",
        "Parts",
        "brand_new",
        "59.99",
        "31",
        40,
        "E-01-1",
        "active",
    ),
    (
        "Fender",
        "Pure Vintage '59 Pickup Set",
        "2025",
        "Nickel",
        "Parts",
        "brand_new",
        "189",
        "120",
        6,
        "E-01-2",
        "active",
    ),
    ("Gibson", "J-45", "1954", "Sunburst", "Acoustic Guitars", "fair", "8900", "6500", 1, "B-01-2", "active"),
    ("Höfner", "500/1 Violin Bass", "1963", "Sunburst", "Basses", "good", "6900", "5000", 1, "A-04-1", "active"),
    (
        "Fender",
        "Precision Bass",
        "1962",
        "Olympic White",
        "Basses",
        "excellent",
        "15500",
        "12000",
        1,
        "A-04-2",
        "active",
    ),
    ("Music Man", "StingRay", "1977", "Natural", "Basses", "very_good", "4200", "3100", 1, "A-04-3", "active"),
]


class Command(BaseCommand):
    help = "Create the demo account, a staff login and a small catalogue of music gear (does nothing if it exists)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-gear-2026")

    @transaction.atomic
    def handle(self, *args, username: str, password: str, **options):
        staff_group_sync()
        if Account.objects.filter(slug="demo-guitars").exists():
            self.stdout.write("Demo account exists; nothing to do.")
            self._print_login(username, password)
            return
        account = account_create(name="Demo Guitars & Amps", slug="demo-guitars")
        user = staff_user_create(account=account, username=username, password=password, email="staff@demo.example")
        if not User.objects.filter(is_superuser=True).exists():
            User.objects.create_superuser("platform", "platform@demo.example", password + "-platform")
        actor = Actor(user=user, source=Source.COMMAND)
        # The demo shop pays for BUSINESS: bulk operations, the API and every channel work in the demo.
        plan_assign(account=account, plan=plan_get("business"), source="demo")
        items = []
        for n, (brand, model, year, finish, category, condition, price, cost, qty, location, state) in enumerate(
            CATALOGUE, 1
        ):
            items.append(
                item_create(
                    account=account,
                    actor=actor,
                    quantity=qty,
                    state=state,
                    fields={
                        "sku": f"DEMO-{n:03d}",
                        "title": f"{year} {brand} {model} {finish}",
                        "brand": brand,
                        "model": model,
                        "year": year,
                        "finish": finish,
                        "category": category,
                        "condition": condition,
                        "price": Decimal(price),
                        "cost": Decimal(cost),
                        "storage_location": location,
                        "serial_number": f"{brand[:2].upper()}{zlib.crc32(model.encode()) % 10**6:06d}",
                        "description": f"{brand} {model} from {year} in {finish}. Plays and sounds great; see photos.",
                    },
                )
            )
        for item in items:
            photo_add(
                item_id=item.pk,
                actor=actor,
                image=demo_photo(title=item.title, category=item.category, finish=item.finish),
                alt_text=f"{item.title} (demo illustration)",
            )
        now = timezone.now()
        # A shipped sale, a completed sale waiting to ship, and an open multi-quantity order.
        sold = items[3]
        order, _ = order_create(
            account=account,
            actor=actor,
            channel="manual",
            external_id="SHOP-1001",
            placed_at=now - timedelta(days=3),
            lines=[LineSpec(sold.pk, 1)],
            details={
                "buyer_name": "Ana Müller",
                "ship_name": "Ana Müller",
                "ship_line1": "Königstraße 12",
                "ship_city": "Stuttgart",
                "ship_postal_code": "70173",
                "ship_country": "DE",
                "currency": "EUR",
            },
        )
        order_complete(order_id=order.pk, actor=actor)
        item_transition(item_id=sold.pk, to_state="shipped", actor=actor, reason="DHL 00340434161094042557")
        order, _ = order_create(
            account=account,
            actor=actor,
            channel="manual",
            external_id="SHOP-1002",
            placed_at=now - timedelta(hours=5),
            lines=[LineSpec(items[10].pk, 1)],
            details={
                "buyer_name": "Sam Okafor",
                "ship_name": "Sam Okafor",
                "ship_line1": "18 Elm Street",
                "ship_city": "Nashville",
                "ship_region": "TN",
                "ship_postal_code": "37203",
                "ship_country": "US",
            },
        )
        order_complete(order_id=order.pk, actor=actor)
        order_create(
            account=account,
            actor=actor,
            channel="manual",
            external_id="SHOP-1003",
            placed_at=now - timedelta(minutes=30),
            lines=[LineSpec(items[13].pk, 2), LineSpec(items[14].pk, 5)],
            details={
                "buyer_name": "Lee Park",
                "ship_name": "Lee Park",
                "ship_line1": "5 Harbour Rd",
                "ship_city": "Leeds",
                "ship_postal_code": "LS1 4AP",
                "ship_country": "GB",
                "currency": "GBP",
            },
        )
        self.stdout.write(
            self.style.SUCCESS(f"Created {account.name} with {len(items)} items (each with a photo) and 3 orders.")
        )
        self._print_login(username, password)

    def _print_login(self, username: str, password: str) -> None:
        self.stdout.write(f"Staff login: {username} / {password}  ->  http://127.0.0.1:8000/admin/")
