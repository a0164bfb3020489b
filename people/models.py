from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True, role=User.Role.PLATFORM_STAFF)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The table exists once per schema: platform staff in public, each agency's people in its own.

    `role` says what the person is to the agency; what they are to a sub-account is a Membership.
    """

    class Role(models.TextChoices):
        PLATFORM_STAFF = "platform_staff", "Platform staff"
        AGENCY_ADMIN = "agency_admin", "Agency admin"
        AGENCY_USER = "agency_user", "Agency user"
        CLIENT = "client", "Client (sub-account people only)"

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLIENT)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_agency_admin(self) -> bool:
        return self.role == self.Role.AGENCY_ADMIN

    @property
    def is_agency_staff(self) -> bool:
        return self.role in (self.Role.AGENCY_ADMIN, self.Role.AGENCY_USER)
