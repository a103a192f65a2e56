"""One browser per dealer login and process, closed at exit."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from .browser import VRBrowser

_sessions: dict[tuple, VRBrowser] = {}
_sessions_lock = threading.Lock()


def session_for(key: tuple, factory: Callable[[], VRBrowser]) -> VRBrowser:
    """The process's browser for this dealer login (key), made once by `factory`."""
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None or session._closed:
            for stale in [k for k in _sessions if k[0] == key[0] and k != key]:  # same login, new settings
                _sessions.pop(stale).close()
            session = factory()
            _sessions[key] = session
        return session


def close_all_sessions() -> None:
    """Close every browser of this process (tests, shutdown)."""
    with _sessions_lock:
        sessions = list(_sessions.values())
        _sessions.clear()
    for session in sessions:
        session.close()


atexit.register(close_all_sessions)
