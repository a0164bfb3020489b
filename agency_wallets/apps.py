from django.apps import AppConfig


class AgencyWalletsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agency_wallets"
    verbose_name = "Agency wallets with the platform"
