from django.apps import AppConfig


class CreditUsageConfig(AppConfig):
    name = "creditusage"
    verbose_name = "Credit usage details"
