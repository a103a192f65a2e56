"""Admin for accounts and users, and the base class every account-owned admin uses."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError

from .models import Account, AccountOwned, User


def _is_account_owned(model) -> bool:
    return issubclass(model, AccountOwned)


def _without_account(fields):
    cleaned = []
    for field in fields:
        if isinstance(field, (list, tuple)):
            field = tuple(f for f in field if f != "account")
            if field:
                cleaned.append(field)
        elif field != "account":
            cleaned.append(field)
    return cleaned


class AccountScopedMixin:
    """Scopes an admin (or inline) to the signed-in user's account.

    Staff see and change only their account's rows, foreign-key choices are limited to
    their account, and new rows are stamped with their account. Platform superusers see
    everything and pick the account themselves.
    """

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if _is_account_owned(related) and "queryset" not in kwargs:
            kwargs["queryset"] = related._default_manager.for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if _is_account_owned(related) and "queryset" not in kwargs:
            kwargs["queryset"] = related._default_manager.for_user(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and _is_account_owned(self.model):
            exclude.append("account")
        return exclude

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not request.user.is_superuser:
            fields = [f for f in fields if f != "account"]
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [(name, {**opts, "fields": _without_account(opts["fields"])}) for name, opts in fieldsets]


class AccountScopedAdmin(AccountScopedMixin, admin.ModelAdmin):
    """ModelAdmin for an account-owned model."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if not _is_account_owned(self.model) or request.user.is_superuser:
            return form_class
        account = request.user.account

        class AccountForm(form_class):
            """Stamps the account before validation and checks per-account unique fields,
            which Django skips because the account is not a field of the form."""

            def clean(self):
                cleaned = super().clean()
                self.instance.account = account
                for constraint in self._meta.model._meta.constraints:
                    names = getattr(constraint, "fields", ())
                    if "account" not in names or getattr(constraint, "condition", None) is not None:
                        continue
                    others = [n for n in names if n != "account"]
                    if not all(n in cleaned for n in others):
                        continue
                    clash = self._meta.model._default_manager.filter(
                        account=account, **{n: cleaned[n] for n in others}
                    ).exclude(pk=self.instance.pk)
                    if clash.exists():
                        self.add_error(others[0], constraint.violation_error_message)
                return cleaned

        return form_class if account is None else AccountForm

    def save_model(self, request, obj, form, change):
        if not change and _is_account_owned(self.model) and not request.user.is_superuser:
            obj.account = request.user.account
        super().save_model(request, obj, form, change)

    def get_actions(self, request):
        # Django puts "Delete selected" first, where a hurried click lands: it goes last.
        actions = super().get_actions(request)
        delete = actions.pop("delete_selected", None)
        if delete is not None:
            actions["delete_selected"] = delete
        return actions

    def account_for(self, request, obj=None):
        """The account an action acts for; a superuser acts for the object's account."""
        if obj is not None:
            return obj.account
        if request.user.account_id is None:
            raise PermissionDenied("Platform superusers must open a row of an account to act for it.")
        return request.user.account


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_currency", "auto_archive_after_days", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk=request.user.account_id)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "account", "is_staff", "is_superuser", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Seller account", {"fields": ["account"]}))

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("account")
        if request.user.is_superuser:
            return qs
        return qs.filter(account_id=request.user.account_id)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        # Staff may manage their colleagues but never escalate or move anyone between accounts.
        return ["account", "is_superuser", "user_permissions"]

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if obj is not None or request.user.is_superuser:
            return form_class
        account_id = request.user.account_id

        class StaffLimitForm(form_class):
            """A new colleague counts against the plan's staff users (checked under the account lock)."""

            def clean(self):
                from billing.errors import PlanLimitReached  # billing builds on accounts: imported late
                from billing.gates import Limit, check_limit

                cleaned = super().clean()
                try:
                    check_limit(account_id, Limit.STAFF_USERS, adding=1)
                except PlanLimitReached as error:
                    raise ValidationError(error.message) from error
                return cleaned

        return StaffLimitForm

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.account = request.user.account
            obj.is_superuser = False
        super().save_model(request, obj, form, change)
