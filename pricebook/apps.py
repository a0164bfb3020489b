from django.apps import AppConfig


class PricebookConfig(AppConfig):
    name = "pricebook"
    verbose_name = "LC Phone price book"
