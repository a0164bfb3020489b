from django.urls import path

from phone import views

app_name = "phone"
urlpatterns = [
    path("agency/subaccounts/<int:subaccount_id>/phone/twilio/", views.provider_twilio_save, name="provider-twilio"),
    path("agency/subaccounts/<int:subaccount_id>/phone/lc-phone/", views.provider_lc_phone_use,
         name="provider-lc-phone"),
]
