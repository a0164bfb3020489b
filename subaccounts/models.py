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
