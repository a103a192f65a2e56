"""The HTTP side: Stripe's API paths, auth and idempotency headers, and the demo checkout page."""

from __future__ import annotations

import json
import secrets
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from .wire import StripeError, decode_form


class Handler(BaseHTTPRequestHandler):
    sandbox = None  # the StripeSandbox, set on the subclass made by StripeSandbox.start()
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY a kept-alive client waits ~40 ms
    # (Nagle + delayed ACK) for every answer.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet: tests read sandbox.requests instead
        pass

    def _send(self, status: int, body: dict | str, *, replayed: bool = False, content_type="application/json"):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if url.path.startswith("/c/pay/"):
            return self._checkout_page(method, url.path.rsplit("/", 1)[-1])
        auth = self.headers.get("Authorization", "")
        if not auth.startswith(f"Bearer {self.sandbox.api_key_prefix}"):
            return self._send(
                401,
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}},
            )
        params = decode_form(url.query if method in ("GET", "DELETE") else body)
        try:
            status, answer, replayed = self.sandbox.handle(
                method, url.path, params, self.headers.get("Idempotency-Key")
            )
        except StripeError as error:
            return self._send(error.status, error.body)
        self._send(status, answer, replayed=replayed)

    def _checkout_page(self, method: str, session_id: str) -> None:
        if session_id not in self.sandbox.sessions:
            return self._send(404, "No such checkout session.", content_type="text/plain")
        if method == "POST":
            target = self.sandbox.pay(session_id)
            self.send_response(303)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        page = (
            "<!doctype html><title>Sandbox checkout</title><h1>Stripe sandbox checkout</h1>"
            f"<p>Session {session_id}</p><form method=post><button>Pay (test)</button></form>"
        )
        return self._send(200, page, content_type="text/html; charset=utf-8")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")
