"""django-filter's backend with every id filter scoped to the caller's account.

A filter on a related row (?item=, ?connection=...) validates the id against its queryset. With
the model's whole table there, another tenant's id was a valid choice (200, empty list) while an
id that exists nowhere was a 400: an existence oracle. Scoped here, both answer the same 400
"Select a valid choice", as for any id the caller cannot see.
"""

from django_filters.rest_framework import DjangoFilterBackend


class AccountScopedFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        for flt in filterset.filters.values():
            choices = getattr(flt, "queryset", None)
            if choices is not None and not callable(choices) and hasattr(choices, "for_user"):
                flt.queryset = choices.for_user(request.user)
        return filterset
