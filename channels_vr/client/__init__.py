"""A real browser on the V&R dealer site: log in, fill the item form, read the export, call its AJAX.

V&R has no API, so the product drives Debian's Chromium with Playwright, with the dealer's
own login. This module knows the browser and the dealer pages and nothing of the ORM: it
takes and returns plain data and raises the typed errors of inventory.channels.

One `VRBrowser` per dealer login and process. All its Playwright calls run on its own
thread (Playwright's sync API belongs to the thread that started it), so calls from any
worker thread queue up there and never drive the browser at the same time. It logs in
once and keeps the session until V&R sends it back to the login page, then logs in again
and repeats the step once. Every step waits on the page's state (an element, a
navigation, a response), never on a fixed sleep, with one timeout per step. When a step
fails, a screenshot and the page's HTML are saved and their paths put on the error
(`error.artifacts`) and in its message, so staff can see what V&R showed. The browser is
closed after a crash, when idle, on `close()` and at process exit.
"""

from .browser import VRBrowser
from .pages import CHROMIUM, LAUNCH_ARGS, Photo, StepArtifacts
from .photos import download_photo
from .sessions import close_all_sessions, session_for

__all__ = [
    "CHROMIUM",
    "LAUNCH_ARGS",
    "Photo",
    "StepArtifacts",
    "VRBrowser",
    "close_all_sessions",
    "download_photo",
    "session_for",
]
