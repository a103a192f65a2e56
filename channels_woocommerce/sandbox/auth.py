"""The loopback shop's authentication, as WC_REST_Authentication decides it, and the key grant flow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, urlencode

import requests

from .records import ApiKey
from .store import error

NONCE_WINDOW = 15 * 60


class Authentication:
    """Part of WooSandbox: who is asking, and the /wc-auth/v1/authorize page."""

    # --- the grant flow (/wc-auth/v1/authorize) -----------------------------------------

    def authorize(self, query: Mapping[str, str], *, approve: bool = True) -> tuple[int, dict[str, str], bytes]:
        """The merchant opens the grant page and approves: a key is made, POSTed as JSON to callback_url,
        and the browser is sent to return_url. Returns (status, headers, body) of the page."""
        required = ("app_name", "scope", "user_id", "return_url", "callback_url")
        missing = [name for name in required if not query.get(name)]
        if missing:
            return 400, {}, f"Missing parameter(s): {', '.join(missing)}".encode()
        if query["scope"] not in ("read", "write", "read_write"):
            return 400, {}, b"Invalid scope."
        if not query["callback_url"].startswith("https://") and not query["callback_url"].startswith(
            ("http://127.0.0.1", "http://localhost")
        ):
            return 400, {}, b"The callback_url needs to be over SSL."
        return_url = query["return_url"]
        if not approve:
            return 302, {"Location": _with_query(return_url, success="0", user_id=query["user_id"])}, b""
        key, secret = "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20)
        key_id = len(self.keys) + 1
        grant = {
            "key_id": key_id,
            "user_id": query["user_id"],
            "consumer_key": key,
            "consumer_secret": secret,
            "key_permissions": query["scope"],
        }
        try:
            answer = requests.post(
                query["callback_url"], data=json.dumps(grant), headers={"Content-Type": "application/json"}, timeout=10
            )
            accepted = 200 <= answer.status_code < 300
        except requests.RequestException:
            accepted = False
        self.grants.append({**grant, "consumer_secret": "***", "accepted": accepted})
        if not accepted:  # WooCommerce revokes the key and tells the merchant
            return 401, {}, b"An error occurred in the request and at the time were unable to send the consumer data."
        self.keys[key] = ApiKey(secret, query["scope"])
        return 302, {"Location": _with_query(return_url, success="1", user_id=query["user_id"])}, b""

    def _authenticate(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, query_pairs: list[tuple[str, str]]
    ) -> tuple[str, tuple[int, dict] | None]:
        """("basic" | "query" | "oauth" | "none", a refusal or None), as WC_REST_Authentication decides."""
        query = dict(query_pairs)
        header = "" if self.strip_authorization else (handler.headers.get("Authorization") or "")
        if self.tls:
            key = secret = ""
            how = "none"
            if header.startswith("Basic "):
                try:
                    key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                    how = "basic"
                except (ValueError, UnicodeDecodeError):
                    return "basic", error(401, "woocommerce_rest_authentication_error", "Invalid Basic header.")
            elif query.get("consumer_key"):
                key, secret, how = query["consumer_key"], query.get("consumer_secret", ""), "query"
            if how == "none":
                return "none", None
            api_key = self.keys.get(key)
            if api_key is None:
                return how, error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
            if not hmac.compare_digest(api_key.secret, secret):
                return how, error(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
            return how, self._permission(api_key, method)
        if not query.get("oauth_consumer_key"):
            return "none", None
        for name in ("oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"):
            if not query.get(name):
                return "oauth", error(
                    401, "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameter {name}"
                )
        api_key = self.keys.get(query["oauth_consumer_key"])
        if api_key is None:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if query["oauth_signature_method"] not in ("HMAC-SHA1", "HMAC-SHA256"):
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid."
            )
        if "oauth_version" in query:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "oauth_version must be omitted.")
        try:
            stamp = int(query["oauth_timestamp"])
        except ValueError:
            stamp = 0
        if abs(time.time() - stamp) > NONCE_WINDOW:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "Invalid timestamp.")
        expected = self._oauth_expected(method, path, query_pairs, api_key.secret)
        given = query["oauth_signature"].replace(" ", "+")
        if not hmac.compare_digest(expected, given):
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
            )
        nonce_key = f"{stamp}:{query['oauth_nonce']}"
        if nonce_key in api_key.nonces:
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used."
            )
        api_key.nonces.add(nonce_key)
        return "oauth", self._permission(api_key, method)

    def _oauth_expected(self, method: str, path: str, query_pairs: list[tuple[str, str]], secret: str) -> str:
        """WC_REST_Authentication::check_oauth_signature, step by step (written from the plugin, not shared
        with the client, so one misreading cannot hide on both sides)."""

        def rfc3986(value: str) -> str:  # wc_rest_urlencode_rfc3986
            return quote(value, safe="-_.~")

        params = {k: v for k, v in query_pairs if k != "oauth_signature"}  # $_GET, already decoded
        params = {rfc3986(k): rfc3986(v) for k, v in params.items()}  # normalize_parameters
        joined = [rfc3986(f"{key}={params[key]}") for key in sorted(params)]  # uksort strcmp, join_with_equals_sign
        base_request_uri = rfc3986(self.site_url + path)
        string_to_sign = f"{method.upper()}&{base_request_uri}&{'%26'.join(joined)}"
        algorithm = params["oauth_signature_method"].replace("HMAC-", "").lower()
        digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), getattr(hashlib, algorithm)).digest()
        return base64.b64encode(digest).decode()

    @staticmethod
    def _permission(api_key: ApiKey, method: str) -> tuple[int, dict] | None:
        if api_key.permissions == "read" and method not in ("GET", "HEAD"):
            return error(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."
            )
        if api_key.permissions == "write" and method in ("GET", "HEAD"):
            return error(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have read permissions."
            )
        return None


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
