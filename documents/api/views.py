"""Document endpoints: input serializer -> selector (scoped to the account) -> PDF."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from accounts.api.base import AccountScopedViewSetMixin
from accounts.roles import Capability
from documents.errors import DocumentError
from documents.responses import pdf_response
from documents.selectors import items_for_documents, orders_for_documents
from documents.services import labels_pdf, packing_slips_pdf, pick_list_pdf

from . import serializers as s

PDF = {(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF, as an attachment.")}
ERRORS = {
    400: OpenApiResponse(description="Cannot print as asked: `code` and `detail` say what to fix."),
    404: OpenApiResponse(description="Some ids or numbers are not in your account: `missing` lists them."),
}


class PDFRenderer(BaseRenderer):
    """Lets clients ask for `Accept: application/pdf`; the PDF itself is returned as-is."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class DocumentViewSet(AccountScopedViewSetMixin, GenericViewSet):
    """Packing slips, storage labels and pick lists of the caller's account, as PDF files."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes

    renderer_classes = [JSONRenderer, PDFRenderer]
    # Each action's input, also what OPTIONS describes (DRF's metadata asks get_serializer()).
    serializers_by_action = {
        "labels": s.LabelsInputSerializer,
        "packing_slips": s.PackingSlipsInputSerializer,
        "pick_list": s.PickListInputSerializer,
    }

    def get_serializer_class(self):
        # OPTIONS runs as the "metadata" action: describe the POST this route takes.
        action = self.action_map.get("post") if self.action == "metadata" else self.action
        return self.serializers_by_action[action]

    def handle_exception(self, exc):
        if isinstance(exc, DocumentError):
            return Response({"code": exc.code, "detail": exc.message, **exc.details}, status=exc.status)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            # Errors are JSON even for a client that asked for a PDF.
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(request=s.LabelsInputSerializer, responses={**PDF, **ERRORS})
    @action(detail=False, methods=["post"])
    def labels(self, request):
        """Storage labels for items: location in large type, Code 128 SKU barcode, QR link to the item."""
        data = self._valid(s.LabelsInputSerializer)
        items = items_for_documents(account=self.get_account(), ids=data["items"], skus=data["skus"])
        pdf = labels_pdf(items, label_format=data["label_format"], fallback_site_url=request.build_absolute_uri("/"))
        return pdf_response(pdf)

    @extend_schema(request=s.PackingSlipsInputSerializer, responses={**PDF, **ERRORS})
    @action(detail=False, methods=["post"], url_path="packing-slips")
    def packing_slips(self, request):
        """One packing slip per order, in the order asked."""
        data = self._valid(s.PackingSlipsInputSerializer)
        orders = orders_for_documents(account=self.get_account(), ids=data["orders"], refs=data["order_numbers"])
        return pdf_response(packing_slips_pdf(orders))

    @extend_schema(request=s.PickListInputSerializer, responses={**PDF, **ERRORS})
    @action(detail=False, methods=["post"], url_path="pick-list")
    def pick_list(self, request):
        """One pick list for orders and items, grouped and sorted by storage location."""
        data = self._valid(s.PickListInputSerializer)
        account = self.get_account()
        orders = orders_for_documents(account=account, ids=data["orders"], refs=data["order_numbers"])
        items = items_for_documents(account=account, ids=data["items"], skus=data["skus"])
        return pdf_response(pick_list_pdf(orders=orders, items=items))

    def _valid(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
