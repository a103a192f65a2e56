"""VRBrowser: one dealer's session on the V&R site in a headless Chromium (see the package docstring)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from inventory.channels import (
    ChannelError,
    ListingNotFound,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

from .. import mappers
from .forms import ItemFormSteps
from .pages import (
    BRAND_CHECK_PATH,
    CHALLENGE_BODY,
    CHALLENGE_SELECTOR,
    CHALLENGE_TITLE,
    CHROMIUM,
    DELETE_PATH,
    EXPORT_PATH,
    FORM_ERRORS,
    ITEM_FORM,
    LAUNCH_ARGS,
    LOGIN_FORM,
    LOGIN_PATH,
    MARK_SOLD_PATH,
    LoginNeeded,
    Photo,
    StepArtifacts,
    crashed,
    failed,
    first_line,
    visible_text,
)
from .processes import browser_pid, tree_rss

log = logging.getLogger("channels_vr.client")


class VRBrowser(ItemFormSteps):
    """One dealer's session on the V&R site in a headless Chromium. Thread-safe; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        step_timeout: float = 30.0,
        artifact_root: Path | None = None,
        artifact_dir: str = "vr-failures",
        artifact_url: str = "",
        idle_seconds: float = 300.0,
        executable_path: str = CHROMIUM,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.step_timeout = step_timeout
        self.artifact_root = Path(str(artifact_root)) if artifact_root is not None else None
        self.artifact_dir = artifact_dir.strip("/")
        self.artifact_url = artifact_url
        self.idle_seconds = idle_seconds
        self.executable_path = executable_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vr-browser")
        self._playwright = None
        self._browser = None
        self._context = None
        self._page = None
        self._logged_in = False
        self._last_used = 0.0
        self._idle_timer: threading.Timer | None = None
        self._closed = False
        self.logins = 0  # how many times this session logged in (tests and the bench read it)
        self.launches = 0
        self.browser_pid: int | None = None

    def __repr__(self) -> str:  # never the password
        return f"VRBrowser({self.base_url!r}, {self.username!r})"

    # --- public operations (each runs on the browser thread) ---------------------------

    def login(self) -> None:
        """Log in now (the connection check), even when a session is open."""
        self._run("log in", self._login_fresh)

    def export(self) -> list[dict[str, str]]:
        """The inventory CSV export, parsed (one download)."""
        return self._run("read the inventory export", self._export)

    def check_brand(self, brand: str) -> str:
        """V&R's id for this brand, or "0" when V&R does not know it."""
        return self._run("check the brand", self._check_brand, brand)

    def add_item(self, fields: Mapping[str, str], photos: Sequence[Photo] = ()) -> None:
        """Fill the add-item form and submit it. V&R's answer does not carry the new id."""
        self._run("submit the add-item form", self._add_item, dict(fields), list(photos))

    def edit_item(self, product_id: str, changes: Mapping[str, str], photos: Sequence[Photo] | None = None) -> None:
        """Open the item's edit form, replace only `changes` (and the photos when given), submit it whole."""
        self._run("submit the edit form", self._edit_item, str(product_id), dict(changes), photos)

    def mark_sold(self, product_id: str) -> bool:
        return self._run("mark the item sold", self._mark_sold, str(product_id))

    def delete_item(self, product_id: str) -> str:
        return self._run("delete the item", self._delete_item, str(product_id))

    def memory_bytes(self) -> int:
        """Resident memory of the browser's processes now (Linux /proc), for the benchmark."""
        return self._executor.submit(self._memory_bytes).result()

    def close(self) -> None:
        """Close the browser and stop its thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        try:
            self._executor.submit(self._shutdown).result(timeout=30)
        except RuntimeError:
            # The interpreter is exiting and has stopped its thread pools already: the Playwright
            # driver sees its pipe close and takes the browser down with it.
            log.debug("V&R browser left to the exiting driver")
        except Exception:  # closing is best effort
            log.warning("closing the V&R browser failed", exc_info=True)
        self._executor.shutdown(wait=False)

    def __enter__(self) -> VRBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the machinery -------------------------------------------------------------------

    def _run(self, step: str, operation: Callable, *args: Any) -> Any:
        if self._closed:
            raise TransientChannelError("the V&R browser session was closed; try again")
        return self._executor.submit(self._guarded, step, operation, *args).result()

    def _guarded(self, step: str, operation: Callable, *args: Any) -> Any:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self._ensure_browser()
            if operation != self._login_fresh and not self._logged_in:
                self._login()
            try:
                return operation(*args)
            except LoginNeeded:
                log.info("V&R session of %s expired during %s: logging in again", self.username, step)
                self._logged_in = False
                self._login()
                try:
                    return operation(*args)
                except LoginNeeded:
                    raise failed(
                        PermanentChannelError,
                        f"V&R sent the browser back to its login page right after logging in ({step}).",
                        self._snapshot(step),
                    ) from None
        except LoginNeeded:
            raise failed(
                PermanentChannelError, f"V&R kept showing its login page ({step}).", self._snapshot(step)
            ) from None
        except ChannelError:
            raise
        except PlaywrightTimeout as error:
            artifacts = self._snapshot(step)
            raise failed(
                TransientChannelError,
                self._with_links(f"V&R did not answer in time ({step}, over {self.step_timeout:g} s)", artifacts),
                artifacts,
            ) from error
        except PlaywrightError as error:
            artifacts = self._snapshot(step)
            if crashed(error) or self._browser is None or not self._browser.is_connected():
                self._reset()  # a crashed page or browser is not reused; a network error keeps it
            raise failed(
                TransientChannelError,
                self._with_links(f"the browser failed to {step}: {first_line(error)}", artifacts),
                artifacts,
            ) from error
        finally:
            self._last_used = time.monotonic()
            self._schedule_idle_close()

    def _ensure_browser(self) -> None:
        if self._page is not None and self._browser is not None and self._browser.is_connected():
            return
        self._reset()
        from playwright.sync_api import sync_playwright

        if self._playwright is None:
            self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=self.executable_path, headless=True, args=list(LAUNCH_ARGS)
        )
        self.launches += 1
        self._context = self._browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        self._context.set_default_timeout(self.step_timeout * 1000)
        self._context.set_default_navigation_timeout(self.step_timeout * 1000)
        self._page = self._context.new_page()
        self._logged_in = False
        self.browser_pid = browser_pid(self.executable_path, self.launches)

    def _reset(self) -> None:
        """Close the browser (kept: the Playwright driver); the next step launches a fresh one."""
        for closable in (self._context, self._browser):
            if closable is not None:
                with contextlib.suppress(Exception):  # already gone
                    closable.close()
        self._page = self._context = self._browser = None
        self._logged_in = False

    def _shutdown(self) -> None:
        self._reset()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                self._playwright.stop()
            self._playwright = None

    def _schedule_idle_close(self) -> None:
        if self.idle_seconds <= 0 or self._closed:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = threading.Timer(self.idle_seconds, self._idle_check)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _idle_check(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the executor is already shut down
            self._executor.submit(self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self._browser is not None and time.monotonic() - self._last_used >= self.idle_seconds:
            log.info("closing the idle V&R browser of %s", self.username)
            self._reset()

    def _url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/"))

    @property
    def _timeout_ms(self) -> float:
        return self.step_timeout * 1000

    # --- page state ------------------------------------------------------------------

    def _check_page(self, step: str, response=None) -> None:
        """After a navigation: a bot check stops everything, the login page means the session expired."""
        page = self._page
        if self._challenged():
            artifacts = self._snapshot(step)
            raise failed(
                PermanentChannelError,
                self._with_links(
                    f"V&R showed a bot check instead of the page ({step}). The product does not try to get past "
                    "it: sign in to V&R once from an ordinary browser on this server's network, or ask V&R to "
                    "allow the dealer account, then retry",
                    artifacts,
                ),
                artifacts,
            )
        status = response.status if response is not None else 200
        if status >= 500:
            artifacts = self._snapshot(step)
            raise failed(
                TransientChannelError,
                self._with_links(f"V&R answered {status} ({step})", artifacts),
                artifacts,
                status=status,
            )
        if self._on_login_page():
            raise LoginNeeded()
        if status == 404:
            raise ListingNotFound(f"V&R has no such page ({step}: {page.url})", status=404)

    def _challenged(self) -> bool:
        page = self._page
        try:
            title = page.title()
        except Exception:
            title = ""
        return bool(CHALLENGE_TITLE.search(title)) or page.locator(CHALLENGE_SELECTOR).count() > 0

    def _on_login_page(self) -> bool:
        path = urlparse(self._page.url).path.rstrip("/")
        if path in ("/login", LOGIN_PATH):
            return True
        return self._page.locator(LOGIN_FORM).count() > 0 and self._page.locator(ITEM_FORM).count() == 0

    def _snapshot(self, step: str) -> StepArtifacts | None:
        """Save a screenshot and the HTML of the page as it is now. Never raises."""
        if self.artifact_root is None or self._page is None:
            return None
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(3)}"
            slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")[:40]
            folder = self.artifact_root / self.artifact_dir
            folder.mkdir(parents=True, exist_ok=True)
            shot = f"{self.artifact_dir}/{stamp}-{slug}.png"
            page_html = f"{self.artifact_dir}/{stamp}-{slug}.html"
            (self.artifact_root / page_html).write_text(self._page_html(), encoding="utf-8")
            self._page.screenshot(path=str(self.artifact_root / shot), full_page=True, timeout=5000)
            return StepArtifacts(step=step, page_url=self._page.url, screenshot=shot, page_html=page_html)
        except Exception as error:
            log.warning("could not save the V&R page of a failed step (%s): %s", step, first_line(error))
            return None

    def _page_html(self) -> str:
        """The page's HTML; a page still navigating (an error page loading) is given a moment to settle."""
        for _ in range(3):
            try:
                return self._page.content()
            except Exception:
                with contextlib.suppress(Exception):
                    self._page.wait_for_load_state("load", timeout=2000)
        return "<!-- the page was still loading; see the screenshot -->"

    def _body_snapshot(self, step: str, url: str, body: str) -> StepArtifacts | None:
        """For a failed direct request (export, AJAX): the body V&R answered, as the page HTML."""
        if self.artifact_root is None:
            return None
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(3)}"
            slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")[:40]
            (self.artifact_root / self.artifact_dir).mkdir(parents=True, exist_ok=True)
            page_html = f"{self.artifact_dir}/{stamp}-{slug}.html"
            (self.artifact_root / page_html).write_text(body, encoding="utf-8")
            return StepArtifacts(step=step, page_url=url, page_html=page_html)
        except Exception:
            log.warning("could not save the V&R answer of a failed step (%s)", step, exc_info=True)
            return None

    def _with_links(self, message: str, artifacts: StepArtifacts | None) -> str:
        if artifacts is None:
            return message + "."
        links = []
        if artifacts.screenshot:
            links.append(f"screenshot {self.artifact_url}{artifacts.screenshot}")
        if artifacts.page_html:
            links.append(f"page HTML {self.artifact_url}{artifacts.page_html}")
        return f"{message}. See {', '.join(links)}."

    # --- login -------------------------------------------------------------------------

    def _login_fresh(self) -> None:
        self._logged_in = False
        self._login()

    def _login(self) -> None:
        """Fill the login form as a dealer does (username, pass) and expect to land on /account."""
        step = "log in"
        page = self._page
        response = page.goto(self._url("/"), wait_until="domcontentloaded")
        if self._challenged():
            self._check_page(step, response)
        form = page.locator(LOGIN_FORM).first
        if page.locator(LOGIN_FORM).count() == 0:
            if response is not None and response.status >= 500:
                self._check_page(step, response)
            # No form in the page header: post the login form's fields as the form would.
            answer = self._context.request.post(
                self._url(LOGIN_PATH),
                form={"username": self.username, "pass": self._password, "open_where": "header"},
                timeout=self._timeout_ms,
            )
            response = page.goto(answer.url, wait_until="domcontentloaded")
        else:
            for name, value in (("username", self.username), ("pass", self._password)):
                field = form.locator(f'input[name="{name}"]')
                if field.count() == 0:
                    artifacts = self._snapshot(step)
                    raise failed(
                        PermanentChannelError,
                        self._with_links(
                            f"V&R's login form has no {name!r} field any more: the page changed", artifacts
                        ),
                        artifacts,
                    )
                field.first.fill(value)
            submit = form.locator('[type="submit"], button').first
            with page.expect_navigation(wait_until="domcontentloaded") as navigation:
                if submit.count():
                    submit.click()
                else:
                    form.evaluate("f => f.submit()")
            response = navigation.value
        if self._challenged():
            self._check_page(step, response)
        if response is not None and response.status >= 500:
            self._check_page(step, response)
        landed = urlparse(page.url).path
        if not landed.startswith("/account") and self._on_login_page():
            artifacts = self._snapshot(step)
            said = visible_text(page, FORM_ERRORS)
            raise failed(
                PermanentChannelError,
                self._with_links(
                    f"V&R refused the login of {self.username!r}"
                    + (f' ("{said}")' if said else "")
                    + ": check the username and password on the Vintage & Rare connection",
                    artifacts,
                ),
                artifacts,
            )
        self._logged_in = True
        self.logins += 1

    # --- direct requests in the browser's session (export, AJAX) ----------------------

    def _request(self, step: str, method: str, path: str, *, form: Mapping[str, str] | None = None, ajax=False):
        headers = {"Referer": self._url("/instruments/show")}
        if ajax:
            headers["X-Requested-With"] = "XMLHttpRequest"
        url = self._url(path)
        if method == "GET":
            response = self._context.request.get(url, headers=headers, timeout=self._timeout_ms)
        else:
            response = self._context.request.post(url, form=dict(form or {}), headers=headers, timeout=self._timeout_ms)
        body = response.text()
        final_path = urlparse(response.url).path.rstrip("/")
        if response.status in (403, 429, 503) and CHALLENGE_BODY.search(body):
            artifacts = self._body_snapshot(step, response.url, body)
            raise failed(
                PermanentChannelError,
                self._with_links(
                    f"V&R answered with a bot check ({step}). The product does not try to get past it: sign in "
                    "to V&R once from an ordinary browser on this server's network, or ask V&R to allow the "
                    "dealer account, then retry",
                    artifacts,
                ),
                artifacts,
                status=response.status,
            )
        if final_path in ("/login", LOGIN_PATH) or response.status == 401:
            raise LoginNeeded()
        if response.status == 429:
            retry_after = response.headers.get("retry-after")
            raise RateLimited(
                f"V&R asked to slow down ({step})",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else 60.0,
                status=429,
            )
        if response.status >= 500:
            artifacts = self._body_snapshot(step, response.url, body)
            raise failed(
                TransientChannelError,
                self._with_links(f"V&R answered {response.status} ({step})", artifacts),
                artifacts,
                status=response.status,
            )
        if response.status >= 400:
            artifacts = self._body_snapshot(step, response.url, body)
            raise failed(
                PermanentChannelError,
                self._with_links(f"V&R refused the request ({step}, {response.status})", artifacts),
                artifacts,
                status=response.status,
                body=body[:500],
            )
        return response, body

    def _export(self) -> list[dict[str, str]]:
        step = "read the inventory export"
        response, body = self._request(step, "GET", EXPORT_PATH)
        if "<form" in body[:5000].lower() and 'name="pass"' in body:
            raise LoginNeeded()  # the login page, answered 200 in place of the file
        try:
            return mappers.parse_export(body)
        except mappers.ExportLayoutChanged as changed:
            artifacts = self._body_snapshot(step, response.url, body)
            raise failed(
                PermanentChannelError,
                self._with_links(
                    f"V&R's inventory export has no {', '.join(repr(c) for c in changed.missing)} column any more: "
                    "its layout changed and the product needs an update",
                    artifacts,
                ),
                artifacts,
            ) from None

    def _ajax_answer(self, body: str) -> str:
        return body.strip().strip('"').strip()

    def _check_brand(self, brand: str) -> str:
        _, body = self._request("check the brand", "POST", BRAND_CHECK_PATH, form={"brand_name": brand}, ajax=True)
        if "<form" in body.lower() and 'name="pass"' in body:
            raise LoginNeeded()
        answer = self._ajax_answer(body)
        if answer.startswith("{"):
            try:
                data = json.loads(answer)
            except ValueError:
                data = {}
            answer = str(data.get("id") or data.get("brand_id") or "0")
        return answer if answer.isdigit() else "0"

    def _mark_sold(self, product_id: str) -> bool:
        path = MARK_SOLD_PATH.format(random=secrets.randbelow(10**9))
        _, body = self._request("mark the item sold", "POST", path, form={"product_id": product_id}, ajax=True)
        if "<form" in body.lower() and 'name="pass"' in body:
            raise LoginNeeded()
        return self._ajax_answer(body).lower() in ("true", "1", "ok")

    def _delete_item(self, product_id: str) -> str:
        _, body = self._request("delete the item", "POST", DELETE_PATH, form={"product_id": product_id}, ajax=True)
        if "<form" in body.lower() and 'name="pass"' in body:
            raise LoginNeeded()
        return self._ajax_answer(body)

    def _memory_bytes(self) -> int:
        return tree_rss(self.browser_pid) if self.browser_pid else 0
