from django.apps import AppConfig


class WalletsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "wallets"
    verbose_name = "Client wallets"

    def ready(self) -> None:
        from wallets import hooks  # noqa: F401  (rating after each usage pull)
