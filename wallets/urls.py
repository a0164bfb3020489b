from django.urls import path

from wallets import views

app_name = "wallets"
urlpatterns = [
    path("accounts/<int:subaccount_id>/billing/add-balance/", views.add_balance, name="add-balance"),
    path("accounts/<int:subaccount_id>/billing/confirm/<int:charge_id>/", views.payment_confirm,
         name="payment-confirm"),
]
