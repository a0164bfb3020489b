"""Setting and changing a sub-account's phone provider (Manage Client)."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from agencies.services import agency_usage_pull_due_now
from people.models import User
from phone.crypto import secret_encrypt
from phone.models import ProviderChange, ProviderStatus, SubAccountProvider
from phone.twilio_access import (
    LcPhoneNotConfigured,
    master_access,
    twilio_base_url,
    twilio_retry,
    twilio_timeout,
)
from phone.usage_client import (
    AccountNotFound,
    CredentialsInvalid,
    UsageFetchError,
    check_credentials,
    create_subaccount,
)
from rebill.tenancy import current_schema
from subaccounts.models import SubAccount

log = logging.getLogger(__name__)

ACCOUNT_SID_PATTERN = re.compile(r"^AC[0-9a-f]{32}$")
AUTH_TOKEN_PATTERN = re.compile(r"^[0-9A-Za-z]{32}$")


def _require_agency_admin(by: User) -> None:
    if not by.is_agency_admin:
        raise PermissionError("Only agency admins change a sub-account's phone provider.")


def _snapshot(provider: SubAccountProvider | None) -> dict[str, Any]:
    """What the audit trail keeps of a provider: never the token, only its last 4 characters."""
    if provider is None:
        return {}
    return {
        "provider": provider.provider,
        "lc_phone_account_sid": provider.lc_phone_account_sid,
        "twilio_account_sid": provider.twilio_account_sid,
        "twilio_auth_token_last4": provider.twilio_auth_token_last4,
        "status": provider.status,
    }


def _locked_provider(subaccount: SubAccount) -> SubAccountProvider | None:
    return SubAccountProvider.objects.select_for_update().filter(subaccount=subaccount).first()


def _twilio_credentials_errors(account_sid: str, auth_token: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not ACCOUNT_SID_PATTERN.match(account_sid):
        errors["account_sid"] = "A Twilio Account SID is AC followed by 32 lowercase hex characters."
    if not AUTH_TOKEN_PATTERN.match(auth_token):
        errors["auth_token"] = "A Twilio auth token is 32 letters and digits."
    return errors


def _platform_master_sid() -> str | None:
    try:
        return master_access().account_sid
    except LcPhoneNotConfigured:
        return None


def provider_set_twilio(*, subaccount: SubAccount, account_sid: str, auth_token: str, by: User) -> SubAccountProvider:
    """Use the agency's own Twilio account, after one call to Twilio proves the credentials work.

    Nothing is saved unless Twilio accepts them; saving them again clears "credentials invalid".
    """
    _require_agency_admin(by)
    account_sid, auth_token = account_sid.strip(), auth_token.strip()
    if errors := _twilio_credentials_errors(account_sid, auth_token):
        raise ValidationError(errors)
    try:
        account = check_credentials(account_sid=account_sid, auth_sid=account_sid, auth_token=auth_token,
                                    base_url=twilio_base_url(), timeout=twilio_timeout(), retry=twilio_retry())
    except CredentialsInvalid:
        raise ValidationError({"auth_token": "Twilio did not accept this Account SID and auth token. Copy both "
                                             "again from your Twilio console and retry."}) from None
    except AccountNotFound:
        raise ValidationError({"account_sid": "Twilio does not know this Account SID."}) from None
    except UsageFetchError:
        log.warning("Checking Twilio credentials of %s failed", account_sid, exc_info=False)
        raise ValidationError("Twilio could not be reached to check these credentials; nothing was saved. "
                              "Try again in a minute.") from None
    if account.status != "active":
        raise ValidationError({"account_sid": f"This Twilio account is {account.status}; use an active account."})
    if account.sid == _platform_master_sid():
        raise ValidationError({"account_sid": "This is the platform's own account; choose LC Phone instead."})

    try:
        return _twilio_save(subaccount=subaccount, account_sid=account_sid, auth_token=auth_token, by=by)
    except IntegrityError:  # another admin set this sub-account's first provider at the same moment
        raise ValidationError(_CHANGED_MEANWHILE) from None


_CHANGED_MEANWHILE = "Someone else changed this sub-account's phone provider just now; reload and try again."


def _activate_and_audit(*, provider: SubAccountProvider, by: User, action: str, before: dict[str, Any]
                        ) -> SubAccountProvider:
    """Save a provider that was just (re)configured as active, with its audit row, in the caller's transaction."""
    provider.status = ProviderStatus.ACTIVE
    provider.last_error, provider.last_error_at = "", None
    previous_sid = before.get("lc_phone_account_sid" if before.get("provider") == PhoneProvider.LC_PHONE
                              else "twilio_account_sid", "")
    if provider.account_sid != previous_sid:
        # "Usage last read" spoke of the previous account; nothing of this one has been read yet.
        provider.last_pulled_at = None
    provider.save()
    ProviderChange.objects.create(subaccount=provider.subaccount, by=by, action=action, before=before,
                                  after=_snapshot(provider))
    agency_usage_pull_due_now(schema_name=current_schema())  # its first pull at beat's next tick
    return provider


@transaction.atomic
def _twilio_save(*, subaccount: SubAccount, account_sid: str, auth_token: str, by: User) -> SubAccountProvider:
    provider = _locked_provider(subaccount)
    before = _snapshot(provider)
    action = ProviderChange.Action.PROVIDER_SET
    if provider is None:
        provider = SubAccountProvider(subaccount=subaccount)
    elif provider.provider == PhoneProvider.TWILIO:
        action = ProviderChange.Action.CREDENTIALS_UPDATED
    provider.provider = PhoneProvider.TWILIO
    provider.twilio_account_sid = account_sid
    provider.twilio_auth_token_encrypted = secret_encrypt(auth_token)
    provider.twilio_auth_token_last4 = auth_token[-4:]
    return _activate_and_audit(provider=provider, by=by, action=action, before=before)


def _lc_phone_friendly_name(subaccount: SubAccount) -> str:
    # Names the Twilio subaccount after its agency schema and sub-account id, so staff can trace it back.
    return f"rebill:{connection.schema_name}:{subaccount.pk} {subaccount.name}"[:64]  # type: ignore[attr-defined]


def provider_set_lc_phone(*, subaccount: SubAccount, by: User) -> SubAccountProvider:
    """Use LC Phone ("Move to LC Phone" for a Twilio sub-account).

    The first time, a Twilio subaccount is created under the platform's master account; a sub-account
    that was on LC Phone before gets its old subaccount back. The agency's Twilio token is dropped:
    nothing needs it any more.
    """
    _require_agency_admin(by)
    existing = SubAccountProvider.objects.filter(subaccount=subaccount).first()
    if existing is not None and existing.provider == PhoneProvider.LC_PHONE:
        return existing
    lc_phone_account_sid = existing.lc_phone_account_sid if existing is not None else ""
    if not lc_phone_account_sid:
        lc_phone_account_sid = _lc_phone_subaccount_create(subaccount)

    try:
        return _lc_phone_save(subaccount=subaccount, lc_phone_account_sid=lc_phone_account_sid, by=by)
    except IntegrityError:  # another admin set this sub-account's first provider at the same moment
        raise ValidationError(_CHANGED_MEANWHILE) from None


@transaction.atomic
def _lc_phone_save(*, subaccount: SubAccount, lc_phone_account_sid: str, by: User) -> SubAccountProvider:
    provider = _locked_provider(subaccount)
    before = _snapshot(provider)
    action = ProviderChange.Action.PROVIDER_SET if provider is None else ProviderChange.Action.MOVED_TO_LC_PHONE
    if provider is None:
        provider = SubAccountProvider(subaccount=subaccount)
    elif provider.provider == PhoneProvider.LC_PHONE:  # a concurrent request got there first
        return provider
    provider.provider = PhoneProvider.LC_PHONE
    provider.lc_phone_account_sid = provider.lc_phone_account_sid or lc_phone_account_sid
    provider.twilio_account_sid = ""
    provider.twilio_auth_token_encrypted = ""
    provider.twilio_auth_token_last4 = ""
    return _activate_and_audit(provider=provider, by=by, action=action, before=before)


def _lc_phone_subaccount_create(subaccount: SubAccount) -> str:
    try:
        master = master_access()
    except LcPhoneNotConfigured:
        log.error("LC Phone is not configured: set TWILIO_MASTER_ACCOUNT_SID and TWILIO_MASTER_AUTH_TOKEN")
        raise ValidationError("LC Phone is not available on this platform right now; nothing was changed.") from None
    try:
        created = create_subaccount(friendly_name=_lc_phone_friendly_name(subaccount), auth_sid=master.auth_sid,
                                    auth_token=master.auth_token, base_url=twilio_base_url(),
                                    timeout=twilio_timeout(), retry=twilio_retry())
    except (CredentialsInvalid, UsageFetchError) as error:
        # Not retried here: a timed-out create may still have created the subaccount (see create_subaccount).
        log.error("Creating the LC Phone subaccount of sub-account %s failed: %s", subaccount.pk, error)
        raise ValidationError("LC Phone could not be set up right now; nothing was changed. Try again later.") from None
    log.info("LC Phone subaccount %s created for sub-account %s", created.sid, subaccount.pk)
    return created.sid


def provider_mark_credentials_invalid(*, provider: SubAccountProvider, encrypted_token: str, reason: str) -> bool:
    """Twilio answered 401 for the agency's stored credentials: stop pulling until an admin fixes them.

    Only if the credentials are still the ones that failed (an admin may have just replaced them).
    """
    with transaction.atomic():
        locked = SubAccountProvider.objects.select_for_update().get(pk=provider.pk)
        if locked.provider != PhoneProvider.TWILIO or locked.twilio_auth_token_encrypted != encrypted_token:
            return False
        before = _snapshot(locked)
        locked.status = ProviderStatus.CREDENTIALS_INVALID
        locked.last_error = reason[:500]
        locked.last_error_at = timezone.now()
        locked.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
        ProviderChange.objects.create(subaccount_id=locked.subaccount_id, by=None,
                                      action=ProviderChange.Action.CREDENTIALS_REJECTED, before=before,
                                      after=_snapshot(locked))
    return True


def provider_record_error(*, provider: SubAccountProvider, reason: str) -> None:
    SubAccountProvider.objects.filter(pk=provider.pk).update(
        last_error=reason[:500], last_error_at=timezone.now(), updated_at=timezone.now()
    )
