"""Indexes that keep the item lists fast at 100,000 items (figures in bench/README.md).

The trigram index serves the admin and API search (`UPPER(col) LIKE UPPER('%term%')` on the
search fields). It needs PostgreSQL's pg_trgm extension (a trusted extension: the database
owner may create it), so it is created on PostgreSQL only; SQLite scans, which is fine for
a development database.
"""

import django.db.models.functions.text
from django.db import migrations, models

SEARCH_COLUMNS = ["sku", "title", "brand", "model", "serial_number"]


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    columns = ", ".join(f"upper({column}) gin_trgm_ops" for column in SEARCH_COLUMNS)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS item_search_trgm ON inventory_item USING gin ({columns})")


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS item_search_trgm")


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0003_listing_lease'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='item',
            index=models.Index(models.F('account'), django.db.models.functions.text.Upper('brand'), name='item_account_brand_ci'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(models.F('account'), django.db.models.functions.text.Upper('category'), name='item_account_category_ci'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(models.F('account'), django.db.models.functions.text.Upper('storage_location'), name='item_account_location_ci'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(fields=['account', 'title'], name='item_account_title'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(fields=['account', 'created_at'], name='item_account_created'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(fields=['account', 'updated_at'], name='item_account_updated'),
        ),
        migrations.RunPython(create_search_index, drop_search_index, elidable=False),
    ]
