from django.apps import AppConfig


class RebillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rebilling"
    verbose_name = "Phone rebilling"
