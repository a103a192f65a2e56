"""Error pages that answer API clients in the API's error shape (config/openapi.py) instead of HTML."""

from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if _is_api(request):
        # Django refuses the request before any view (a malformed multipart body, too many fields).
        return JsonResponse(
            {"code": "bad_request", "detail": "The request could not be read: send a well-formed JSON body."},
            status=400,
        )
    return defaults.bad_request(request, exception, template_name)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse(
            {"code": "not_found", "detail": "Nothing at this address: ids are whole numbers; see /api/docs/."},
            status=404,
        )
    return defaults.page_not_found(request, exception, template_name)
