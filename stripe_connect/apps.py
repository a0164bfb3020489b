from django.apps import AppConfig


class StripeConnectConfig(AppConfig):
    name = "stripe_connect"
    verbose_name = "Stripe Connect"
