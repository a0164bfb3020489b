from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    # Company Billing (the sub-account's account admins)
    path("accounts/<int:subaccount_id>/billing/", views.company_billing, name="company"),
    path("accounts/<int:subaccount_id>/billing/card/", views.card_setup_start_view, name="card-start"),
    path("accounts/<int:subaccount_id>/billing/card/<int:setup_id>/", views.card_setup_page, name="card-setup"),
    path("accounts/<int:subaccount_id>/billing/card/<int:setup_id>/done/", views.card_setup_done, name="card-done"),
    path("accounts/<int:subaccount_id>/billing/card/remove/", views.card_remove_view, name="card-remove"),
    path("billing/payment-link/<str:token>/", views.payment_link, name="payment-link"),
    # Manage Client (agency admins)
    path("agency/subaccounts/<int:subaccount_id>/billing/payment-link/", views.payment_link_send_view,
         name="send-link"),
    path("agency/subaccounts/<int:subaccount_id>/billing/customers/", views.customer_search, name="customer-search"),
    path("agency/subaccounts/<int:subaccount_id>/billing/customers/link/", views.customer_link, name="customer-link"),
]
