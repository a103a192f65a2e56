"""What every channel's loopback sandbox shares: the HTTP server and the fault plan.

Each channel app's `sandbox/` speaks its marketplace's wire format; these two pieces are the
same for all of them, so they live here once:

- `LoopbackHTTPServer`: a threaded server on 127.0.0.1 that keeps track of kept-alive client
  connections (so a stopped sandbox answers nothing, as a marketplace that went down) and
  stays quiet about clients that hang up (the timeout fault does that on purpose).
- `FaultPlan`: seeded random faults (500s, 429s with Retry-After, timeouts that were applied
  but answered late) and scripted ones for the next matching requests, repeatable run to run.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("error", "rate_limit", "timeout")


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    sandbox: Any  # the sandbox object the handlers serve
    label = "sandbox"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Drop kept-alive client connections too, so a stopped sandbox answers nothing."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return  # a client that gave up (the timeout fault does this on purpose)
        logging.getLogger(type(self).__module__).exception("%s failed on a request from %s", self.label, client_address)


@dataclass
class Faults:
    """Random faults, drawn from a seeded generator so a run can be repeated exactly.

    error: 500, nothing applied. rate_limit: 429 with Retry-After, nothing applied.
    timeout: the request IS applied, then the answer is held back `timeout_delay` seconds
    (past the client's timeout). latency_ms: added to every API request.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_delay: float = 2.0
    retry_after: int = 2
    seed: int = 0


@dataclass
class ScriptedFault:
    kind: str
    method: str | None
    path_prefix: str | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


class FaultPlan:
    """The faults a sandbox injects: scripted ones first, then seeded random ones.

    `faults` is the settings dataclass: `Faults`, or a sandbox's own with more fields.
    """

    def __init__(self, faults: type = Faults, **settings: Any) -> None:
        self.faults = faults()
        self._lock = threading.Lock()
        self._scripted: list[ScriptedFault] = []
        self._rng = random.Random(settings.get("seed", 0))
        self.set(**settings)

    def set(self, **changes: Any) -> Faults:
        """Change fault rates or timings (names of `Faults`); returns the settings now in force."""
        with self._lock:
            unknown = set(changes) - set(asdict(self.faults))
            if unknown:
                raise ValueError(f"Unknown fault settings: {sorted(unknown)}")
            for name, value in changes.items():
                setattr(self.faults, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            return type(self.faults)(**asdict(self.faults))

    def fail_next(
        self, kind: str, *, method: str | None = None, path_prefix: str | None = None, count: int = 1
    ) -> None:
        """Script a fault for the next `count` matching requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"Fault kinds are {FAULT_KINDS}")
        with self._lock:
            self._scripted.append(ScriptedFault(kind, method, path_prefix, count))

    def chance(self, rate: float) -> bool:
        """A seeded draw for a sandbox's own faults (e.g. delivering a webhook twice)."""
        with self._lock:
            return bool(rate) and self._rng.random() < rate

    def pick(self, method: str, path: str) -> str:
        """The fault for this request: "error", "rate_limit", "timeout" or "" (none)."""
        with self._lock:
            for scripted in self._scripted:
                if scripted.matches(method, path):
                    scripted.remaining -= 1
                    if scripted.remaining <= 0:
                        self._scripted.remove(scripted)
                    return scripted.kind
            f = self.faults
            if not (f.error_rate or f.rate_limit_rate or f.timeout_rate):
                return ""
            draw = self._rng.random()
        if draw < f.error_rate:
            return "error"
        if draw < f.error_rate + f.rate_limit_rate:
            return "rate_limit"
        if draw < f.error_rate + f.rate_limit_rate + f.timeout_rate:
            return "timeout"
        return ""


class FaultInjection:
    """A sandbox's fault controls, backed by its `FaultPlan` in `self._faults`."""

    _faults: FaultPlan

    @property
    def faults(self):
        return self._faults.faults

    def set_faults(self, **changes: Any):
        """Change the random faults (see Faults); setting `seed` restarts the generator, so a run repeats exactly."""
        return self._faults.set(**changes)

    def fail_next(
        self, kind: str, *, method: str | None = None, path_prefix: str | None = None, count: int = 1
    ) -> None:
        """Script a fault for the next matching request(s), e.g. fail_next("timeout", method="POST",
        path_prefix="/listings"): the change is applied and its answer never arrives in time."""
        self._faults.fail_next(kind, method=method, path_prefix=path_prefix, count=count)

    def _pick_fault(self, method: str, path: str) -> str:
        return self._faults.pick(method, path)


class RequestLog:
    """What a sandbox was sent, for tests: records with `method`, `path` and `is_write`, kept in
    `self._log` under `self._log_lock`."""

    _log: list
    _log_lock: threading.Lock

    def requests(self, method: str | None = None, path_prefix: str | None = None) -> list:
        """API requests received, oldest first, by method and path prefix."""
        with self._log_lock:
            return [
                r
                for r in self._log
                if (method is None or r.method == method) and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.requests(method, path_prefix))

    @property
    def reads(self) -> int:
        return sum(1 for r in self.requests() if not r.is_write)

    @property
    def writes(self) -> int:
        return sum(1 for r in self.requests() if r.is_write)

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()
