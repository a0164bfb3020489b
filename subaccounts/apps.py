from django.apps import AppConfig


class SubaccountsConfig(AppConfig):
    name = "subaccounts"
    verbose_name = "Sub-accounts"
