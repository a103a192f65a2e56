"""Refusals of a document request. Each says what is wrong and what to do instead."""

from __future__ import annotations


class DocumentError(Exception):
    """A document cannot be printed as asked. `status` is the HTTP status the API answers with."""

    code = "document_error"
    status = 400

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class NothingSelected(DocumentError):
    code = "nothing_selected"


class TooManyForOneDocument(DocumentError):
    code = "too_many"


class NotFoundInAccount(DocumentError):
    """Ids or references that are not in the user's account (another account's look the same: absent)."""

    code = "not_found"
    status = 404


class MissingShippingAddress(DocumentError):
    code = "missing_shipping_address"


class MissingStorageLocation(DocumentError):
    code = "missing_storage_location"


class OrderNotPrintable(DocumentError):
    code = "order_not_printable"


class MixedAccounts(DocumentError):
    code = "mixed_accounts"


class SiteUrlMissing(DocumentError):
    code = "site_url_missing"
