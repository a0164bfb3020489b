from django.urls import path

from stripe_connect import views

app_name = "stripe_connect"
urlpatterns = [
    path("agency/settings/stripe/", views.stripe_settings, name="settings"),
    path("agency/settings/stripe/connect/", views.stripe_connect_start, name="connect"),
    path("agency/settings/stripe/callback/", views.stripe_connect_callback, name="callback"),
    path("agency/settings/stripe/disconnect/", views.stripe_disconnect, name="disconnect"),
]
