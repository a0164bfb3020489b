from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from phoneregistry.models import TwilioAccountClaim, UsageAlert


@admin.register(UsageAlert)
class UsageAlertAdmin(admin.ModelAdmin):
    list_display = ["updated_at", "kind", "agency", "subaccount_id", "account_sid", "day", "category", "detail"]
    list_filter = ["kind"]
    search_fields = ["account_sid", "agency__slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TwilioAccountClaim)
class TwilioAccountClaimAdmin(admin.ModelAdmin):
    list_display = ["account_sid", "agency", "subaccount_id", "claimed_at", "released_after"]
    search_fields = ["account_sid", "agency__slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
