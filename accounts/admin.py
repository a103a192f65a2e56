"""Admin for accounts and users, and the base class every account-owned admin uses."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .models import Account, AccountOwned, ApiToken, AuditEntry, User
from .roles import Capability, Role, capability_for_model, has_capability
from .services import api_token_create, api_token_revoke, owner_check_kept, user_invite, user_role_change

# Admin actions that only read (a viewer may run them); every other action takes the capability
# its model's changes take (accounts.roles.capability_for_model) or the one it names itself
# (`action.capability = Capability.X`).
READ_ONLY_ACTIONS = {"export_admin_action"}


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


class RolePermissionsMixin:
    """The admin's side of accounts.roles, for a ModelAdmin or an inline.

    Seeing takes VIEW; adding, changing, deleting and running actions take the model's capability.
    Django's model permissions (the "Shop staff" group) still apply: a role only narrows them.
    Platform superusers are not limited.
    """

    def _role_allows(self, request, capability: str) -> bool:
        return request.user.is_superuser or has_capability(request.user, capability)

    def _write_capability(self) -> str:
        return capability_for_model(self.model)

    def has_module_permission(self, request):
        return super().has_module_permission(request) and self._role_allows(request, Capability.VIEW)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._role_allows(request, Capability.VIEW)

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and self._role_allows(request, self._write_capability())

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._role_allows(request, self._write_capability())

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._role_allows(request, self._write_capability())

    def get_actions(self, request):
        actions = super().get_actions(request)
        if request.user.is_superuser:
            return actions
        allowed = {}
        for name, (func, *rest) in actions.items():
            needed = Capability.VIEW if name in READ_ONLY_ACTIONS else getattr(func, "capability", None)
            if self._role_allows(request, needed or self._write_capability()):
                allowed[name] = (func, *rest)
        return allowed


class AccountScopedMixin(RolePermissionsMixin):
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

    def history_view(self, request, object_id, extra_context=None):
        """The change page's "History" button opens the audit log (before and after values, also of
        changes made through the API or by workers) for models it records; Django's own otherwise."""
        from auditlog.registry import auditlog

        if not auditlog.contains(self.model) or self.get_object(request, object_id) is None:
            return super().history_view(request, object_id, extra_context)
        query = (
            f"item={object_id}"
            if self.model._meta.label_lower == "inventory.item"
            else (f"object={self.model._meta.label_lower}:{object_id}")
        )
        return HttpResponseRedirect(f"{reverse('admin:accounts_auditentry_changelist')}?{query}")

    def account_for(self, request, obj=None):
        """The account an action acts for; a superuser acts for the object's account."""
        if obj is not None:
            return obj.account
        if request.user.account_id is None:
            raise PermissionDenied("Platform superusers must open a row of an account to act for it.")
        return request.user.account


@admin.register(Account)
class AccountAdmin(RolePermissionsMixin, admin.ModelAdmin):
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


def _role_table() -> list[tuple[str, list[str]]]:
    from .roles import ROLE_CAPABILITIES

    return [
        (Role(role).label, [Capability(c).label for c in Capability.values if c in caps])
        for role, caps in ROLE_CAPABILITIES.items()
    ]


class InvitationForm(forms.Form):
    email = forms.EmailField(help_text="They get a link to choose a password; it works for a few days.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF, help_text=User._meta.get_field("role").help_text)


@admin.register(User)
class UserAdmin(RolePermissionsMixin, DjangoUserAdmin):
    list_display = ["username", "email", "account", "role", "is_active", "is_superuser", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "is_superuser"]
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Seller account", {"fields": ["account", "role"]}))

    def get_urls(self):
        invite = path("invite/", self.admin_site.admin_view(self.invite_view), name="accounts_user_invite")
        return [invite, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # Colleagues are invited (they choose their own password); platform staff may still add users.
        if not request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:accounts_user_invite"))
        return super().add_view(request, form_url, extra_context)

    def invite_view(self, request):
        if request.user.is_superuser or not self.has_add_permission(request):
            raise PermissionDenied("Inviting colleagues takes the owner role; platform staff add users directly.")
        form = InvitationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from billing.errors import PlanLimitReached  # billing builds on accounts: imported late

            try:
                user = user_invite(account=request.user.account, by=request.user, request=request, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
            except PlanLimitReached as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request, f"Invitation sent to {user.email} ({user.get_role_display()}).", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite a colleague",
            "form": form,
            "opts": self.model._meta,
            "role_table": _role_table(),
        }
        return TemplateResponse(request, "admin/accounts/user/invite.html", context)

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("account")
        if request.user.is_superuser:
            return qs
        return qs.filter(account_id=request.user.account_id)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        # Owners manage their colleagues but never escalate or move anyone between accounts.
        return ["account", "is_superuser", "user_permissions", "groups"]

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if obj is not None:

            class KeepAnOwnerForm(form_class):
                """An account always keeps an active owner (checked again in save_model, under a lock)."""

                def clean(self):
                    cleaned = super().clean()
                    try:
                        owner_check_kept(
                            user=self.instance,
                            new_role=cleaned.get("role", self.instance.role),
                            new_active=cleaned.get("is_active", self.instance.is_active),
                        )
                    except ValidationError as error:
                        raise ValidationError(error.messages) from error
                    return cleaned

            return KeepAnOwnerForm
        if request.user.is_superuser:
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
        if change and "role" in form.changed_data:
            # Through the service: it locks the account's owners so none can be left without one.
            new_role = obj.role
            obj.role = form.initial.get("role", new_role)
            with transaction.atomic():
                super().save_model(request, obj, form, change)
                obj.role = user_role_change(user=obj, role=new_role, by=request.user).role
            return
        super().save_model(request, obj, form, change)


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "scope"]


@admin.register(ApiToken)
class ApiTokenAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """API tokens: anyone makes their own (the key is shown once); an owner sees and revokes the
    account's. A read token only reads, a read/write one does what its person's role allows."""

    list_display = ["name", "user", "scope", "key_start", "created_at", "last_used_at", "status"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    actions = ["revoke"]
    form = ApiTokenForm

    def _write_capability(self) -> str:
        return Capability.VIEW  # one's own tokens; others' are limited in get_queryset / revoke

    def get_queryset(self, request):
        return ApiToken.objects.for_user(request.user).select_related("user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = (
                User.objects.all() if request.user.is_superuser else User.objects.filter(pk=request.user.pk)
            )
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ["user", "name", "scope", "key_start", "created_at", "last_used_at", "revoked_at"]
        return ["user", "name", "scope"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["user", "name", "scope", "key_start", "created_at", "last_used_at", "revoked_at"]
        return []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for the audit trail

    def save_model(self, request, obj, form, change):
        if change:
            return
        token, key = api_token_create(user=obj.user, name=obj.name, scope=obj.scope)
        obj.pk = token.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            format_html(
                "Token “{}” made. Copy it now, it is not shown again: <code style='user-select:all'>{}</code>",
                token.name,
                key,
            ),
            messages.SUCCESS,
        )

    @admin.display(description="key")
    def key_start(self, token):
        return f"{token.prefix}…"

    @admin.display(description="status")
    def status(self, token):
        return "revoked" if token.revoked_at else "active"

    @admin.action(description="Revoke (the key stops working at once)")
    def revoke(self, request, queryset):
        n = 0
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                api_token_revoke(token=token, by=request.user)
            except (PermissionDenied, ValidationError) as error:
                self.message_user(
                    request, f"{token}: {' '.join(getattr(error, 'messages', [str(error)]))}", messages.ERROR
                )
                continue
            n += 1
        self.message_user(request, f"{n} token(s) revoked.", messages.SUCCESS)


revoke_capability = Capability.VIEW  # revoking one's own; api_token_revoke checks others'
ApiTokenAdmin.revoke.capability = revoke_capability


class PersonFilter(admin.SimpleListFilter):
    title = "person"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        people = (
            User.objects.all() if request.user.is_superuser else User.objects.filter(account_id=request.user.account_id)
        )
        return [
            ("system", "The system (workers, schedules)"),
            *((u.pk, u.get_username()) for u in people.order_by("username")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "system":
            return queryset.filter(actor__isnull=True)
        if self.value():
            return queryset.filter(actor_id=self.value())
        return queryset


class ItemFilter(admin.SimpleListFilter):
    """Everything about one item: its own fields and its listings (?item=<id>, linked from an item)."""

    title = "item"
    parameter_name = "item"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"item #{value}")] if value else []

    def queryset(self, request, queryset):
        if self.value():
            try:
                return queryset.filter(item_id=int(self.value()))
            except ValueError:
                return queryset.none()
        return queryset


class ObjectFilter(admin.SimpleListFilter):
    """One row's entries (?object=<app_label.model>:<id>), linked from its change page's History."""

    title = "row"
    parameter_name = "object"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        label, _, pk = self.value().partition(":")
        app_label, _, model = label.partition(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model, object_pk=pk)


class KindFilter(admin.SimpleListFilter):
    title = "what changed"
    parameter_name = "kind"
    KINDS = {
        "item": ["inventory.item"],
        "listing": ["inventory.channellisting"],
        "connection": None,  # every connection model
        "plan": ["billing.subscription"],
        "webhook": ["inventory.webhookevent"],
        "person": ["accounts.user", "accounts.apitoken"],
        "account": ["accounts.account"],
    }

    def lookups(self, request, model_admin):
        return [
            ("item", "Item fields"),
            ("listing", "List / delist"),
            ("connection", "Connections"),
            ("plan", "Plan"),
            ("webhook", "Webhook replays"),
            ("person", "People, roles and tokens"),
            ("account", "Account settings"),
        ]

    def queryset(self, request, queryset):
        kind = self.value()
        if kind == "connection":
            return queryset.filter(content_type__model__endswith="connection")
        if kind in self.KINDS:
            q = None
            from django.db.models import Q

            for label in self.KINDS[kind]:
                app_label, model = label.split(".")
                part = Q(content_type__app_label=app_label, content_type__model=model)
                q = part if q is None else q | part
            return queryset.filter(q)
        return queryset


if admin.site.is_registered(AuditEntry):
    admin.site.unregister(AuditEntry)  # auditlog's own admin: not scoped to an account


@admin.register(AuditEntry)
class AuditEntryAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """Who changed what, before and after, for the signed-in person's account. Read only."""

    list_display = ["timestamp", "actor_name", "action", "what", "row", "change_summary"]
    list_filter = [
        KindFilter,
        PersonFilter,
        ItemFilter,
        ObjectFilter,
        "action",
        ("timestamp", admin.DateFieldListFilter),
    ]
    search_fields = ["object_repr", "changes_text"]
    date_hierarchy = "timestamp"
    list_select_related = ["actor", "content_type"]
    readonly_fields = [
        "timestamp",
        "actor",
        "action",
        "content_type",
        "object_pk",
        "object_repr",
        "item_id",
        "changes_table",
        "remote_addr",
        "additional_data",
    ]
    fields = readonly_fields

    def _write_capability(self) -> str:
        return Capability.PEOPLE

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(account_id=request.user.account_id)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="who", ordering="actor__username")
    def actor_name(self, entry):
        return entry.actor.get_username() if entry.actor_id else "system"

    @admin.display(description="what")
    def what(self, entry):
        return entry.content_type.name if entry.content_type_id else ""

    @admin.display(description="row", ordering="object_repr")
    def row(self, entry):
        return _short(entry.object_repr, 40)

    @admin.display(description="changes")
    def change_summary(self, entry):
        rows = entry.changes_dict or {}
        return "; ".join(
            f"{name}: {_short(v[0])} → {_short(v[1])}"
            for name, v in rows.items()
            if isinstance(v, list) and len(v) == 2
        )

    @admin.display(description="before and after")
    def changes_table(self, entry):
        rows = entry.changes_dict or {}
        return format_html(
            "<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((name, v[0], v[1]) for name, v in rows.items() if isinstance(v, list) and len(v) == 2),
            ),
        )


def _short(value, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
