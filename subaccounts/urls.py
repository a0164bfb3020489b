from django.urls import path

from subaccounts import views

app_name = "subaccounts"
urlpatterns = [
    path("agency/subaccounts/", views.subaccount_list, name="list"),
    path("agency/subaccounts/new/", views.subaccount_new, name="create"),
    path("agency/subaccounts/<int:subaccount_id>/", views.subaccount_manage, name="manage"),
    path("agency/subaccounts/<int:subaccount_id>/edit/", views.subaccount_edit, name="edit"),
    path("agency/subaccounts/<int:subaccount_id>/members/", views.member_add, name="member-add"),
    path(
        "agency/subaccounts/<int:subaccount_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path(
        "agency/subaccounts/<int:subaccount_id>/members/<int:membership_id>/invite/",
        views.member_invite,
        name="member-invite",
    ),
    path("accounts/<int:subaccount_id>/", views.subaccount_dashboard, name="dashboard"),
]
