"""No index of ours that another index of the same table already serves.

A foreign key gets its own index by default; where the table also has an index that leads with
that column (a unique (connection, listing id), an (account, state, id) list index), the lone
index serves no lookup the longer one does not, and is written on every insert and on every
update that moves the row (the sale path inserts into six of these tables). Such a key is
declared with db_index=False (accounts.models.account_key for the account).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Plain b-tree indexes whose columns, operator classes and collations are the first ones of
# another (non-partial, non-expression) b-tree index of the same table.
_SERVED_BY_A_LONGER_INDEX = """
WITH idx AS (
  SELECT i.indrelid, i.indexrelid, c.relname AS name, i.indisunique AS uniq,
         string_to_array(i.indkey::text, ' ') AS cols, string_to_array(i.indclass::text, ' ') AS classes,
         string_to_array(i.indcollation::text, ' ') AS colls,
         i.indpred IS NOT NULL AS partial, i.indexprs IS NOT NULL AS expr, am.amname
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am ON am.oid = c.relam
  WHERE c.relnamespace = current_schema()::regnamespace
)
SELECT a.indrelid::regclass::text, a.name, min(b.name)
FROM idx a JOIN idx b ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid
WHERE a.amname = 'btree' AND b.amname = 'btree' AND NOT a.uniq
  AND NOT a.partial AND NOT b.partial AND NOT a.expr AND NOT b.expr
  AND cardinality(a.cols) < cardinality(b.cols)
  AND a.cols = b.cols[1:cardinality(a.cols)]
  AND a.classes = b.classes[1:cardinality(a.cols)]
  AND a.colls = b.colls[1:cardinality(a.cols)]
GROUP BY 1, 2
ORDER BY 1, 2
"""


def _our_tables() -> set[str]:
    """The tables of this project's own models (not Django's, allauth's or axes')."""
    root = Path(settings.BASE_DIR).resolve()
    return {
        model._meta.db_table
        for config in apps.get_app_configs()
        if Path(config.path).resolve().parent == root  # the project's top-level apps
        for model in config.get_models(include_auto_created=False)
    }


def test_no_index_of_ours_is_served_by_a_longer_one_of_its_table():
    with connection.cursor() as cursor:
        cursor.execute(_SERVED_BY_A_LONGER_INDEX)
        found = cursor.fetchall()

    ours = _our_tables()
    redundant = [f"{table}.{index} (served by {longer})" for table, index, longer in found if table in ours]
    assert not redundant, (
        "These indexes repeat the first columns of a longer index of their table: declare the "
        "foreign key with db_index=False (accounts.models.account_key(db_index=False) for the "
        "account) and make a migration:\n  " + "\n  ".join(redundant)
    )


def test_the_check_finds_such_an_index():
    # Given a table with a lone index on the column a unique pair leads with
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_pair (a int, b int, UNIQUE (a, b))")
        cursor.execute("CREATE INDEX probe_a ON probe_pair (a)")
        cursor.execute("CREATE INDEX probe_b ON probe_pair (b)")
        cursor.execute(_SERVED_BY_A_LONGER_INDEX)
        found = [row for row in cursor.fetchall() if row[0] == "probe_pair"]

    # Then the lone index on the leading column is found, the one on the second column is not
    assert found == [("probe_pair", "probe_a", "probe_pair_a_b_key")]
