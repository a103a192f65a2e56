"""SyncRun rows: every pull, push, reconcile and audit with what it did and how long it took."""

from __future__ import annotations

import time
from contextlib import contextmanager

from django.utils import timezone

from ..models import ChannelConnection, SyncKind, SyncRun, SyncStatus
from .returning import insert_rows


@contextmanager
def sync_run(connection: ChannelConnection, kind: str, *, run_id: int | None = None):
    """A SyncRun row around a piece of work; counts are set on it by the caller.

    `run_id`: a run queued earlier (a sync staff asked for over the API), taken over here so
    the caller who was answered 202 follows this very row.
    """
    run = None
    if run_id is not None:
        run = SyncRun.objects.filter(pk=run_id, connection=connection).first()
    if run is None:
        run = SyncRun.objects.create(account_id=connection.account_id, connection=connection, kind=kind)
    else:
        run.status = SyncStatus.RUNNING
        run.save(update_fields=["status"])
    started = time.monotonic()
    try:
        yield run
    except Exception as error:
        run.status = SyncStatus.FAILED
        run.error_text = f"{type(error).__name__}: {error}"[:4000]
        raise
    else:
        run.status = SyncStatus.PARTIAL if run.errors else SyncStatus.OK
    finally:
        run.finished_at = timezone.now()
        run.duration_ms = int((time.monotonic() - started) * 1000)
        run.save()


def push_recorded(
    connection_id: int, account_id: int, *, started: float, done: list[str], error: Exception | None = None
) -> SyncRun | None:
    """One push (a listing converged) as a SyncRun, written after the fact so a listing that
    is already in sync costs no write. Nothing is recorded when nothing was sent."""
    run = push_run(connection_id, account_id, started=started, done=done, error=error)
    if run is not None:
        insert_rows([run])  # one per converge: its SQL written once (returning.py)
    return run


def push_run(
    connection_id: int, account_id: int, *, started: float, done: list[str], error: Exception | None = None
) -> SyncRun | None:
    """The SyncRun push_recorded writes, not yet saved (None when nothing was sent): a converge's
    final write carries it in its own statement (services.listings._record)."""
    failures = [step for step in done if step.startswith("error:")]
    if error is not None:
        failures.append(f"{type(error).__name__}: {error}")
    done = [step for step in done if step not in ("unchanged", "relisting") and not step.startswith("error:")]
    if not done and not failures:
        return None
    created = sum(1 for step in done if step == "published")
    ended = sum(1 for step in done if step == "ended")
    updated = sum(1 for step in done if step == "adopted" or step.startswith("revised"))
    now = timezone.now()
    run = SyncRun(
        account_id=account_id,
        connection_id=connection_id,
        kind=SyncKind.PUSH,
        status=(SyncStatus.PARTIAL if done else SyncStatus.FAILED) if failures else SyncStatus.OK,
        finished_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        created=created,
        updated=updated,
        ended=ended,
        errors=len(failures),
        error_text="\n".join(failures)[:4000],
    )
    return run
