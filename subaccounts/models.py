from django.conf import settings
from django.db import models


class SubAccount(models.Model):
    """An agency's client. Lives in the agency's schema."""

    name = models.CharField(max_length=150)
    contact_email = models.EmailField(blank=True)
    phone = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ACCOUNT_ADMIN = "account_admin", "Account admin"
        ACCOUNT_USER = "account_user", "Account user"

    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subaccount", "role", "user__email"]
        constraints = [models.UniqueConstraint(fields=["subaccount", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.subaccount}"


class AuditEntry(models.Model):
    """The one audit log of a sub-account: who changed what — rebilling, multipliers, provider, card, memberships —
    before and after. Written in the change's own transaction; insert-only; never holds a secret."""

    class Action(models.TextChoices):
        # Card and payment requests
        CARD_SET = "card_set", "Card on file set"
        CARD_REMOVED = "card_removed", "Card removed"
        CARD_SYNCED = "card_synced", "Card updated from Stripe"
        CUSTOMER_LINKED = "customer_linked", "Stripe customer linked"
        CUSTOMER_FORGOTTEN = "customer_forgotten", "Stripe customer gone from Stripe; forgotten"
        PAYMENT_LINK_SENT = "payment_link_sent", "Payment link sent"
        PAYMENT_LINK_USED = "payment_link_used", "Payment link used"
        # Phone provider
        PROVIDER_SET = "provider_set", "Provider set"
        CREDENTIALS_UPDATED = "credentials_updated", "Twilio credentials updated"
        MOVED_TO_LC_PHONE = "moved_to_lc_phone", "Moved to LC Phone"
        CREDENTIALS_REJECTED = "credentials_rejected", "Twilio rejected the stored credentials"
        LC_PHONE_SUSPENDED = "lc_phone_suspended", "LC Phone subaccount suspended at Twilio"
        LC_PHONE_RESUMED = "lc_phone_resumed", "LC Phone subaccount resumed at Twilio"
        # People
        MEMBER_ADDED = "member_added", "Person added"
        MEMBER_REMOVED = "member_removed", "Person removed"
        MEMBER_ROLE_CHANGED = "member_role_changed", "Person's role changed"
        # Rebilling
        REBILLING_ENABLED = "rebilling_enabled", "Phone rebilling switched on"
        REBILLING_DISABLED = "rebilling_disabled", "Phone rebilling switched off"
        MULTIPLIERS_CHANGED = "multipliers_changed", "Multipliers changed"
        AUTO_RECHARGE_CHANGED = "auto_recharge_changed", "Auto-recharge changed"
        PLAN_RULES_APPLIED = "plan_rules_applied", "Plan change applied"
        AGENCY_MULTIPLIERS_CHANGED = "agency_multipliers_changed", "Agency default multipliers changed"
        # Credit usage details
        DETAILS_SHARING_CHANGED = "details_sharing_changed", "Account users' access to usage details changed"
        SPEND_ALERT_PAUSED = "spend_alert_paused", "Phone usage paused by a spend alert"
        SPEND_ALERT_RESUMED = "spend_alert_resumed", "Phone usage resumed after a spend alert"

    # Null: an agency-wide change that applies to every sub-account (e.g. the agency's default multipliers).
    subaccount = models.ForeignKey(SubAccount, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="audit_entries")
    # The person's email, or who acted for nobody in particular ("Stripe", "Twilio", "platform").
    actor = models.CharField(max_length=254)
    action = models.CharField(max_length=30, choices=Action.choices)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["subaccount", "-created_at"], name="audit_by_subaccount_newest")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor}"
