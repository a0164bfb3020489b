"""URLs on an agency's domain."""

from django.urls import include, path

from rebill import views

urlpatterns = [
    path("favicon.ico", views.favicon),
    path("", views.home, name="home"),
    path("", include("people.urls")),
    path("", include("subaccounts.urls")),
    path("", include("phone.urls")),
    path("", include("billing.urls")),
    path("", include("wallets.urls")),
    path("", include("creditusage.urls")),
    path("", include("agency_wallets.urls")),
    path("", include("rebilling.urls")),
    path("", include("stripe_connect.urls")),
]
