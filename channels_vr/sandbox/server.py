"""A loopback V&R dealer site: the pages, form fields, export and AJAX calls the client relies on.

Built from ../shared/CHANNELS.md section 4 (the only public description of the dealer site):
login at POST /do_login (username, pass, open_where=header) setting a PHPSESSID cookie and
redirecting to /account; the add/edit item form at /instruments/add_edit_item[/{id}] with a
single-use hidden `unique_id`, a `version` per item and the real field names, posted as
multipart with image_1..image_20 files; a "saved" answer that does not carry the new id; the
inventory CSV export with V&R's columns; the AJAX brand check, mark-sold and delete calls
(X-Requested-With, form-encoded). Every item post is checked: a used or unknown unique_id, a
stale version, an unknown brand or category, a missing field are refused as V&R would, and
unknown field names are recorded for the tests.

Switches (set_switches) make it misbehave deterministically: slow pages, sessions that expire
(now or after N more requests), a renamed form field, a bot challenge on every page, and a
server error after the item was stored.
"""

from __future__ import annotations

import html
import io
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from .. import mappers
from .pages import challenge_page, frame, item_form
from .store import (
    BRANDS,
    CATEGORIES,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    FORM_FIELDS,
    REQUIRED_FIELDS,
    SESSION_COOKIE,
    Item,
    RecordedRequest,
    Switches,
    VRStore,
)

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "RecordedRequest", "Switches", "VRSandbox"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    sandbox: VRSandbox


class VRSandbox:
    """The loopback dealer site, usable as a context manager: `with VRSandbox() as site: site.base_url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        state_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state_file = state_file
        self.store = VRStore(username=username, password=password)
        if state_file:
            self.store.load(state_file)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if self._server is None:
            self._server = _Server((self.host, self.port), _Handler)
            self._server.sandbox = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="vr-sandbox", daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        if ready is not None:
            ready(self.base_url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VRSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the site, for tests -------------------------------------------------------------

    def reset(self) -> None:
        """Forget every item, session and request (between tests sharing one site)."""
        with self.store.lock:
            self.store.sessions.clear()
            self.store.unique_ids.clear()
            self.store.items.clear()
            self.store.next_id = 70001
            self.store.switches = Switches()
            self.store.log.clear()

    def host_photo(self, name: str, data: bytes, mime_type: str = "image/jpeg") -> str:
        """Serve a photo at a URL of this server (standing in for the shop's media host). Returns the URL."""
        with self.store.lock:
            self.store.hosted_photos[name] = (mime_type, data)
        return f"{self.base_url}/__photos__/{name}"

    def set_switches(self, **changes: Any) -> None:
        with self.store.lock:
            self.store.switches = replace(self.store.switches, **changes)
            if "seed" in changes:
                self.store.random = random.Random(changes["seed"])

    def expire_sessions(self) -> None:
        """Every signed-in browser is sent to the login page on its next request."""
        with self.store.lock:
            self.store.sessions.clear()

    def items(self, sku: str | None = None) -> list[Item]:
        with self.store.lock:
            return [
                i for i in self.store.items.values() if sku is None or i.fields.get(mappers.FIELD_EXTERNAL_ID) == sku
            ]

    def item(self, product_id: str | int) -> Item | None:
        with self.store.lock:
            return self.store.items.get(int(product_id))

    def export_rows(self) -> list[dict[str, str]]:
        with self.store.lock:
            return [self.store.export_row(i, self.base_url) for i in self.store.items.values()]

    def add_external_item(
        self,
        sku: str = "",
        *,
        brand: str = "Fender",
        model: str = "Stratocaster",
        price: str = "1000.00",
        year: str = "",
        finish: str = "",
        description: str = "",
        categories: Iterable[str] = ("51", "83"),
        sold: bool = False,
        **extra: str,
    ) -> Item:
        """An item the dealer listed on V&R directly (not through the back office)."""
        fields = {
            mappers.FIELD_BRAND: brand,
            mappers.FIELD_MODEL: model,
            mappers.FIELD_PRICE: price,
            mappers.FIELD_EXTERNAL_ID: sku,
            mappers.FIELD_YEAR: year,
            mappers.FIELD_DECADE: mappers.decade_of(year),
            mappers.FIELD_FINISH: finish,
            mappers.FIELD_DESCRIPTION: description,
            mappers.FIELD_SHIPMENT: "1",
            mappers.FIELD_YOUTUBE: "",
            mappers.FIELD_PROCESSING_TIME: "3",
            mappers.FIELD_PROCESSING_UNIT: "days",
            **mappers.category_fields(list(categories)),
            **extra,
        }
        with self.store.lock:
            item = Item(id=self.store.next_id, fields=fields, images=[], sold=sold, sold_by="buyer" if sold else "")
            self.store.next_id += 1
            self.store.items[item.id] = item
            return item

    def simulate_sale(self, sku: str) -> Item:
        """A buyer buys the item on V&R: the export shows it sold (V&R tells nothing more)."""
        with self.store.lock:
            live = [
                i for i in self.store.items.values() if i.fields.get(mappers.FIELD_EXTERNAL_ID) == sku and not i.sold
            ]
            if not live:
                raise LookupError(f"no item for sale with external id {sku!r}")
            item = live[-1]
            item.sold, item.sold_by = True, "buyer"
            return item

    def requests(self, kind: str | None = None) -> list[RecordedRequest]:
        with self.store.lock:
            return [r for r in self.store.log if kind is None or r.kind == kind]

    def reset_log(self) -> None:
        with self.store.lock:
            self.store.log.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    @property
    def site(self) -> VRSandbox:
        return self.server.sandbox

    @property
    def store(self) -> VRStore:
        return self.server.sandbox.store

    # --- plumbing -------------------------------------------------------------------------

    def _session(self) -> str | None:
        jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
        morsel = jar.get(SESSION_COOKIE)
        return morsel.value if morsel else None

    def _signed_in(self) -> bool:
        session = self._session()
        with self.store.lock:
            if not session or session not in self.store.sessions:
                return False
            switches = self.store.switches
            if switches.expire_after is not None:
                if switches.expire_after <= 0:
                    self.store.sessions.clear()
                    switches.expire_after = None
                    return False
                switches.expire_after -= 1
            return True

    def _send(self, status: int, body: str | bytes, *, content_type: str = "text/html; charset=utf-8", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return status

    def _redirect(self, location: str, headers=None) -> int:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        return 302

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, kind: str, status: int, *, fields=None, files=(), signed_in=False, unknown=(), product_id=""):
        safe = {k: ("***" if k == "pass" else v) for k, v in (fields or {}).items()}
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "cookie"}
        with self.store.lock:
            self.store.log.append(
                RecordedRequest(
                    method=self.command,
                    path=urlparse(self.path).path,
                    kind=kind,
                    fields=safe,
                    files=tuple(files),
                    status=status,
                    signed_in=signed_in,
                    headers=headers,
                    unknown_fields=tuple(unknown),
                    product_id=str(product_id),
                )
            )

    def _slow(self) -> None:
        delay = self.store.switches.slow_ms
        if delay:
            time.sleep(delay / 1000)

    # --- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        if not self.site.state_file:
            self._route("POST")
            return
        # The answer is held back until the state file is written: a client that has its answer (and a
        # sandbox restarted right after it) must find the change on disk.
        socket_writer, self.wfile = self.wfile, io.BytesIO()
        try:
            self._route("POST")
        finally:
            answer = self.wfile.getvalue()
            self.wfile = socket_writer
            self.store.save(self.site.state_file)
            self.wfile.write(answer)

    def _route(self, method: str) -> None:
        self._slow()
        path = urlparse(self.path).path.rstrip("/") or "/"
        body = self._body() if method == "POST" else b""
        if self.store.switches.bot_challenge:
            status = self._send(403, challenge_page())
            self._record("challenge", status)
            return
        if path.startswith("/uploads/products/"):
            self._photo(path)
            return
        if path == "/favicon.ico":
            self._send(404, "", content_type="text/plain")
            return
        if path.startswith("/__photos__/"):  # not V&R: the shop's own photo host, for tests and the demo
            name = path.rsplit("/", 1)[-1]
            photo = self.store.hosted_photos.get(name)
            if photo is None:
                self._send(404, "not found", content_type="text/plain")
            else:
                self._send(200, photo[1], content_type=photo[0])
            return
        if path == "/__sandbox__/sell" and method == "POST":  # not V&R: a buyer, for the demo
            sku = parse_qs(body.decode()).get("sku", [""])[0]
            try:
                item = self.site.simulate_sale(sku)
            except LookupError as error:
                self._send(404, str(error), content_type="text/plain")
            else:
                self._send(200, json.dumps({"product_id": item.id, "sku": sku}), content_type="application/json")
            return
        if path == "/do_login" and method == "POST":
            self._login(body)
            return
        if path in ("/", "/login"):
            self._home(path)
            return
        signed_in = self._signed_in()
        if not signed_in:
            status = self._redirect("/login?redirect=" + path)
            self._record("redirect_to_login", status)
            return
        with self.store.lock:
            failing = self.store.switches.fail_requests > 0
            if failing:
                self.store.switches.fail_requests -= 1
            elif self.store.switches.error_rate and self.store.random.random() < self.store.switches.error_rate:
                failing = True
        if failing:
            status = self._send(500, frame("Error", "<h1>500 Internal Server Error</h1>", signed_in=True))
            self._record("error", status, signed_in=True)
            return
        if path == "/logout":
            with self.store.lock:
                self.store.sessions.discard(self._session() or "")
            self._redirect("/")
        elif path in ("/account", "/instruments/show"):
            count = len(self.site.items())
            status = self._send(200, frame("My account", f"<h1>My account</h1><p>{count} items.</p>", signed_in=True))
            self._record("page", status, signed_in=True)
        elif path == "/instruments/export_inventory/export_inventory" and method == "GET":
            self._export()
        elif path.startswith("/instruments/add_edit_item"):
            rest = path[len("/instruments/add_edit_item") :].strip("/")
            if method == "GET":
                self._form(rest)
            else:
                self._save(rest, body)
        elif path.startswith("/ajax/"):
            self._ajax(method, path, body)
        else:
            status = self._send(404, frame("Not found", "<h1>Page not found</h1>", signed_in=True))
            self._record("other", status, signed_in=True)

    def _home(self, path: str) -> None:
        signed_in = self._signed_in()
        query = parse_qs(urlparse(self.path).query)
        error = '<div class="alert alert-danger">Wrong e-mail or password.</div>' if "error" in query else ""
        if path == "/login" and not signed_in:
            body = f"<h1>Sign in</h1>{error}<p>Please sign in to continue.</p>"
        else:
            body = "<h1>The marketplace for vintage and rare instruments</h1>"
        status = self._send(200, frame("Sign in" if path == "/login" else "Home", body, signed_in=signed_in))
        self._record("page", status, signed_in=signed_in)

    def _login(self, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        ok = form.get("username") == self.store.username and form.get("pass") == self.store.password
        if ok and form.get("open_where") == "header":
            session = secrets.token_hex(16)
            with self.store.lock:
                self.store.sessions.add(session)
            status = self._redirect("/account", {"Set-Cookie": f"{SESSION_COOKIE}={session}; Path=/; HttpOnly"})
        else:
            status = self._redirect("/login?error=1")
        self._record("login", status, fields=form)

    def _photo(self, path: str) -> None:
        parts = path.strip("/").split("/")  # uploads/products/{id}/{n}/original.jpg
        try:
            item = self.site.item(parts[2])
            _name, mime, data = item.images[int(parts[3]) - 1]
        except (IndexError, ValueError, AttributeError, TypeError):
            self._send(404, "not found", content_type="text/plain")
            return
        self._send(200, data, content_type=mime)
        self._record("photo", 200)

    def _export(self) -> None:
        rows = self.site.export_rows()
        columns = mappers.EXPORT_COLUMNS
        if self.store.switches.wrong_export_columns:
            columns = tuple(c for c in columns if c != "external id")
        text = mappers.export_csv(rows, columns)
        status = self._send(
            200,
            text,
            content_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="vintageandrare_inventory_{time.strftime("%Y-%m-%d")}.csv"'
            },
        )
        self._record("export", status, signed_in=True)

    def _form(self, rest: str) -> None:
        item = None
        if rest:
            item = self.site.item(rest) if rest.isdigit() else None
            if item is None:
                status = self._send(404, frame("Not found", "<h1>Item not found</h1>", signed_in=True))
                self._record("form", status, signed_in=True, product_id=rest)
                return
        with self.store.lock:
            page = item_form(self.store, item)
        status = self._send(200, page)
        self._record("form", status, signed_in=True, product_id=rest)

    def _save(self, rest: str, body: bytes) -> None:
        kind = "edit" if rest else "add"
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            status = self._send(400, frame("Error", "<h1>The item form must be sent as multipart</h1>", signed_in=True))
            self._record(kind, status, signed_in=True, product_id=rest)
            return
        fields, files = _multipart(content_type, body)
        images = [(n, files[n]) for n in mappers.PHOTO_FIELDS if n in files and files[n][2]]
        unknown = tuple(sorted(k for k in [*fields, *files] if k not in FORM_FIELDS and k not in mappers.PHOTO_FIELDS))
        with self.store.lock:
            refuse = self.store.switches.fail_before_store > 0
            if refuse:
                self.store.switches.fail_before_store -= 1
        if refuse:
            status = self._send(500, frame("Error", "<h1>500 Internal Server Error</h1>", signed_in=True))
            self._record(kind, status, fields=fields, signed_in=True, unknown=unknown, product_id=rest)
            return
        with self.store.lock:
            item = self.site.item(rest) if rest else None
            if rest and item is None:
                status = self._send(404, frame("Not found", "<h1>Item not found</h1>", signed_in=True))
                self._record(kind, status, fields=fields, signed_in=True, unknown=unknown, product_id=rest)
                return
            error = self._invalid(fields, item)
            if error is not None:
                status_code, message = error
                if status_code == 409:
                    page = frame(
                        "Changed", f'<div class="alert alert-danger">{html.escape(message)}</div>', signed_in=True
                    )
                else:
                    page = item_form(self.store, item, error=message, values=fields)
                status = self._send(status_code, page)
                self._record(kind, status, fields=fields, files=[n for n, _ in images], signed_in=True, unknown=unknown)
                return
            self.store.unique_ids.discard(fields["unique_id"])
            stored = {k: v for k, v in fields.items() if k in FORM_FIELDS and k not in ("unique_id", "version", "save")}
            if item is None:
                item = Item(id=self.store.next_id, fields=stored, images=[img for _, img in images])
                self.store.next_id += 1
                self.store.items[item.id] = item
            else:
                item.fields = stored  # an edit replaces every field with what the form posted
                if images:
                    item.images = [img for _, img in images]
                item.version += 1
            failing = self.store.switches.fail_after_store > 0
            if failing:
                self.store.switches.fail_after_store -= 1
            elif self.store.switches.store_then_fail_rate:
                failing = self.store.random.random() < self.store.switches.store_then_fail_rate
        files_sent = [n for n, _ in images]
        if failing:
            status = self._send(500, frame("Error", "<h1>500 Internal Server Error</h1>", signed_in=True))
        else:
            # "Saved", without the new item's id: the dealer finds it in the inventory.
            status = self._redirect("/instruments/show?saved=1")
        self._record(kind, status, fields=fields, files=files_sent, signed_in=True, unknown=unknown, product_id=item.id)

    def _invalid(self, fields: dict[str, str], item: Item | None) -> tuple[int, str] | None:
        unique_id = fields.get("unique_id", "")
        if unique_id not in self.store.unique_ids:
            return 400, "This form was already sent or has expired. Please open it again."
        if item is not None and fields.get("version") != str(item.version):
            return 409, "This item was changed meanwhile. Please open it again."
        for name in REQUIRED_FIELDS:
            if not fields.get(name, "").strip():
                return 400, f"Please fill in {name}."
        if fields[mappers.FIELD_BRAND].strip().lower() not in BRANDS:
            return 400, "Please choose a brand from the list."
        try:
            if Decimal(fields[mappers.FIELD_PRICE]) <= 0:
                raise InvalidOperation
        except InvalidOperation:
            return 400, "Please enter a valid price."
        parent = ""
        for name in mappers.CATEGORY_FIELDS:
            value = fields.get(name, "")
            if not value:
                break
            if value not in CATEGORIES or CATEGORIES[value][1] != parent:
                return 400, f"Unknown category {value}."
            parent = value
        return None

    def _ajax(self, method: str, path: str, body: bytes) -> None:
        xhr = self.headers.get("X-Requested-With") == "XMLHttpRequest"
        if path == "/ajax/get_categories" and method == "GET":
            parent = parse_qs(urlparse(self.path).query).get("parent", [""])[0]
            rows = [(cid, name) for cid, (name, up) in CATEGORIES.items() if up == parent]
            self._send(200, json.dumps(rows), content_type="application/json")
            return
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        form_encoded = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if method != "POST" or not xhr or not form_encoded:
            status = self._send(400, "bad request", content_type="text/plain")
            self._record("other", status, fields=form, signed_in=True)
            return
        if path == "/ajax/check_brand_exists":
            brand = form.get("brand_name", "").strip().lower()
            status = self._send(200, json.dumps(str(BRANDS.get(brand, 0))), content_type="application/json")
            self._record("brand", status, fields=form, signed_in=True)
        elif path.startswith("/ajax/mark_as_sold/"):
            item = self.site.item(form["product_id"]) if form.get("product_id", "").isdigit() else None
            with self.store.lock:
                if item is not None and self.store.switches.buyer_before_mark_sold > 0:
                    self.store.switches.buyer_before_mark_sold -= 1
                    item.sold, item.sold_by = True, "buyer"
                ok = item is not None and not item.sold
                if ok:
                    item.sold, item.sold_by = True, "dealer"
            status = self._send(200, "true" if ok else "false", content_type="text/plain")
            self._record("mark_sold", status, fields=form, signed_in=True, product_id=form.get("product_id", ""))
        elif path == "/ajax/delete_item":
            product_id = form.get("product_id", "")
            with self.store.lock:
                gone = self.store.items.pop(int(product_id), None) if product_id.isdigit() else None
            status = self._send(200, "true" if gone else "false", content_type="text/plain")
            self._record("delete", status, fields=form, signed_in=True, product_id=product_id)
        else:
            status = self._send(404, "not found", content_type="text/plain")
            self._record("other", status, fields=form, signed_in=True)


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    """Fields and files of a multipart/form-data body (stdlib email parser; cgi is gone in 3.13)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if filename is not None:
            files[name] = (filename, part.get_content_type(), payload)
        else:
            fields[name] = payload.decode(part.get_content_charset() or "utf-8")
    return fields, files
