from django.urls import path

from agency_wallets import views

app_name = "agency_wallets"
urlpatterns = [
    path("agency/settings/billing/", views.settings_billing, name="settings-billing"),
    path("agency/settings/billing/auto-recharge/", views.auto_recharge_save, name="auto-recharge"),
    path("agency/settings/billing/card/", views.card_setup_start_view, name="card-start"),
    path("agency/settings/billing/card/<int:setup_id>/", views.card_setup_page, name="card-setup"),
    path("agency/settings/billing/card/<int:setup_id>/done/", views.card_setup_done, name="card-done"),
    path("agency/settings/billing/confirm/<int:charge_id>/", views.payment_confirm, name="payment-confirm"),
]
