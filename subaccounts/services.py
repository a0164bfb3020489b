"""Writes about sub-accounts and the people in them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from people.models import User
from people.services import user_create
from rebill.text import validate_name
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry, Membership, SubAccount


def _validate_name(name: str, *, exclude_id: int = 0) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Enter the client's name."})
    try:
        validate_name(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    clash = SubAccount.objects.filter(name__iexact=name).exclude(pk=exclude_id)
    if clash.exists():
        raise ValidationError({"name": f"A sub-account named {name!r} already exists."})
    return name


def _member_state(membership: Membership) -> dict[str, str]:
    return {"email": membership.user.email, "role": membership.role}


@transaction.atomic
def subaccount_create(*, name: str, contact_email: str = "", phone: str = "", by: User) -> SubAccount:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins create sub-accounts.")
    return SubAccount.objects.create(
        name=_validate_name(name), contact_email=contact_email.strip().lower(), phone=phone.strip()
    )


@transaction.atomic
def subaccount_update(*, subaccount: SubAccount, name: str, contact_email: str, phone: str, by: User) -> SubAccount:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins edit sub-accounts.")
    subaccount.name = _validate_name(name, exclude_id=subaccount.pk)
    subaccount.contact_email = contact_email.strip().lower()
    subaccount.phone = phone.strip()
    subaccount.save(update_fields=["name", "contact_email", "phone"])
    return subaccount


@transaction.atomic
def membership_add(
    *, subaccount: SubAccount, email: str, full_name: str, role: str, by: User
) -> tuple[Membership, bool]:
    """Add a person to a sub-account; returns (membership, whether the user was created and needs an invitation).

    People join by invitation only: a new user is created without a password and sets their own from the
    invitation (sent by the caller once this has committed). An existing client of this agency (a person in
    another sub-account) is linked, not duplicated. Agency staff are never members of a client: only the
    client's own people may add its card.
    """
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins manage sub-account people.")
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    existing = User.objects.filter(email=email.strip().lower()).first()
    if existing is not None:
        if existing.is_agency_staff:
            raise ValidationError({"email": f"{existing.email} is agency staff: agency staff cannot be members of "
                                            "a client's sub-account. Add a person of the client's."})
        if existing.role != User.Role.CLIENT:
            raise ValidationError({"email": f"{existing.email} cannot be added to a sub-account."})
        if Membership.objects.filter(subaccount=subaccount, user=existing).exists():
            raise ValidationError({"email": f"{existing.email} is already in this sub-account."})
        user, created = existing, False
    else:
        user = user_create(email=email, full_name=full_name, password=None, role=User.Role.CLIENT)
        created = True
    membership = Membership.objects.create(subaccount=subaccount, user=user, role=role)
    audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.MEMBER_ADDED,
                 after=_member_state(membership))
    return membership, created


@transaction.atomic
def membership_remove(*, membership: Membership, by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins manage sub-account people.")
    audit_record(subaccount=membership.subaccount_id, actor=by.email, action=AuditEntry.Action.MEMBER_REMOVED,
                 before=_member_state(membership))
    membership.delete()
