from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts import checks  # noqa: F401  (registers the deploy check)
        from accounts.rls import apply_after_migrate

        post_migrate.connect(apply_after_migrate, dispatch_uid="accounts.rls.apply_after_migrate")
