"""`make demo-data`, which `make run` starts with, on the setup a newcomer gets: SQLite and the
filesystem broker, no PostgreSQL and no Redis. The rest of the suite runs on PostgreSQL, so a change
that only SQLite refuses (issue 14's prepared updates once did) would otherwise reach a newcomer's
first `make run` unseen. The commands are read from the Makefile's recipe, so the two cannot drift."""

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What CI or a developer's shell sets for the PostgreSQL suite, and which `make run` does not see.
NOT_PASSED = ("DATABASE_", "REDIS_URL", "CELERY_", "DJANGO_")


def demo_data_commands() -> list[list[str]]:
    """The `manage.py` lines of the Makefile's demo-data recipe, without collectstatic (files, no data)."""
    recipe = re.search(r"^demo-data:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has no demo-data recipe"
    commands = [
        shlex.split(line.split("manage.py", 1)[1]) for line in recipe.group(1).splitlines() if "manage.py" in line
    ]
    return [command for command in commands if command[0] != "collectstatic"]


def test_the_makefile_recipe_is_read_as_the_commands_it_runs():
    commands = demo_data_commands()
    assert commands[0] == ["migrate", "--noinput"]
    assert ["create_demo"] in commands and ["reverb_demo"] in commands and len(commands) >= 8


def test_make_demo_data_runs_on_sqlite_and_the_filesystem_broker(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(NOT_PASSED)}
    env.update(DJANGO_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")

    for command in demo_data_commands():
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"manage.py {shlex.join(command)} failed:\n{done.stderr[-3000:]}"

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        items = db.execute("SELECT count(*) FROM inventory_item").fetchone()[0]
        listings = db.execute("SELECT count(*) FROM inventory_channellisting").fetchone()[0]
        conflicts = db.execute("SELECT count(*) FROM inventory_conflict").fetchone()[0]
    assert items > 0 and listings > 0
    assert conflicts >= 1  # reverb_demo's double sale, recorded through the sale path
    # The demo's pushes wait for `make run`'s worker in this run's own broker folder, not in var/.
    assert any((tmp_path / "celery-broker").glob("*.msg"))
