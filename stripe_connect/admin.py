from django.contrib import admin

from stripe_connect.models import ConnectedAccount, WebhookEvent


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(admin.ModelAdmin):
    list_display = ["agency", "account_id", "livemode", "connected_at"]
    readonly_fields = ["agency", "account_id", "livemode", "display_name", "connected_by", "connected_at"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "event_type", "account_id", "status", "attempts", "received_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "account_id"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
