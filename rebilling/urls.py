from django.urls import path

from rebilling import views

app_name = "rebilling"
urlpatterns = [
    path("agency/settings/phone-integration/", views.phone_integration, name="phone-integration"),
    path("agency/settings/rebilling/", views.rebilling_settings, name="settings"),
    path("agency/subaccounts/bulk/", views.bulk, name="bulk"),
    path("agency/subaccounts/<int:subaccount_id>/rebilling/switch/", views.resell_switch, name="switch"),
    path("agency/subaccounts/<int:subaccount_id>/rebilling/multipliers/", views.resell_multipliers,
         name="multipliers"),
    path("agency/subaccounts/<int:subaccount_id>/rebilling/auto-recharge/", views.resell_auto_recharge,
         name="auto-recharge"),
    path("agency/subaccounts/<int:subaccount_id>/rebilling/preview/", views.resell_preview, name="preview"),
]
