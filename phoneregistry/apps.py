from django.apps import AppConfig


class PhoneRegistryConfig(AppConfig):
    name = "phoneregistry"
    verbose_name = "Twilio account registry"
