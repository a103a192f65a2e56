from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _staff_group_refresh(sender, **kwargs) -> None:
    # New models bring new permissions after each migrate: the "Shop staff" group gets them.
    from .services import staff_group_sync

    staff_group_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy check)
        from .audit import connection_models_register
        from .rls import apply_after_migrate

        connection_models_register()
        post_migrate.connect(apply_after_migrate, dispatch_uid="accounts.rls.apply_after_migrate")
        post_migrate.connect(_staff_group_refresh, sender=self, dispatch_uid="accounts-staff-group")
