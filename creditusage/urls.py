from django.urls import path

from creditusage import views

app_name = "creditusage"
urlpatterns = [
    path("accounts/<int:subaccount_id>/billing/details/", views.client_details, name="client-details"),
    path("agency/subaccounts/<int:subaccount_id>/usage/", views.agency_usage_details, name="agency-details"),
    path("agency/settings/billing/details/", views.rebilling_dashboard, name="dashboard"),
    path("agency/settings/billing/details-sharing/", views.details_sharing_settings, name="details-sharing"),
    # Settings → Billing → See details (the agency's wallet with the platform).
    path("agency/settings/billing/platform-wallet/", views.agency_wallet_details, name="agency-wallet"),
    path("agency/subaccounts/<int:subaccount_id>/spend-alert/resume/", views.spend_alert_resume_view,
         name="spend-alert-resume"),
    path("agency/settings/billing/spend-alerts/", views.spend_alert_settings, name="spend-alerts"),
    path("agency/settings/billing/reconciliation.csv", views.reconciliation_export, name="reconciliation"),
]
