from django.urls import path

from stripe_connect import views

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("stripe/platform-webhook/", views.stripe_platform_webhook, name="stripe-platform-webhook"),
]
