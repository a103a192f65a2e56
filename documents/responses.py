"""A printed document as an HTTP response, shared by the admin and the API."""

from django.http import HttpResponse

from .services import Pdf


def pdf_response(pdf: Pdf, *, inline: bool = False) -> HttpResponse:
    """The PDF with its file name: shown in the browser (`inline`) or downloaded."""
    response = HttpResponse(pdf.content, content_type=pdf.content_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{pdf.filename}"'
    response["Content-Length"] = str(len(pdf.content))
    # Documents carry buyers' addresses: never keep them in a shared cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Document-Pages"] = str(pdf.pages)
    return response
