"""Setting and changing a sub-account's phone provider (Manage Client)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agencies.plans import PhoneProvider
from agencies.services import agency_usage_pull_due_now
from people.models import User
from phone.crypto import secret_encrypt
from phone.models import ProviderStatus, RetiredAccount, SubAccountProvider
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
    account_currency,
    check_credentials,
    create_subaccount,
    set_account_status,
)
from phoneregistry.services import AccountSidTaken, twilio_account_claim, twilio_account_release
from rebill.tenancy import current_schema
from subaccounts.audit import audit_record
from subaccounts.models import AuditEntry, SubAccount

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
        currency = account_currency(account_sid=account_sid, auth_sid=account_sid, auth_token=auth_token,
                                    base_url=twilio_base_url(), timeout=twilio_timeout(), retry=twilio_retry())
    except (CredentialsInvalid, UsageFetchError):
        raise ValidationError("Twilio could not be reached to check this account's currency; nothing was saved. "
                              "Try again in a minute.") from None
    if currency != "usd":
        shown = currency.upper() or "an unknown currency"
        raise ValidationError({"account_sid": f"This Twilio account is billed in {shown}; only accounts billed "
                                              "in USD can be rebilled. Nothing was saved."})

    try:
        return _twilio_save(subaccount=subaccount, account_sid=account_sid, auth_token=auth_token, by=by)
    except IntegrityError:  # another admin set this sub-account's first provider at the same moment
        raise ValidationError(_CHANGED_MEANWHILE) from None
    except AccountSidTaken:
        raise ValidationError({"account_sid": "This Twilio account is already used by another sub-account; "
                                              "each Twilio account can be billed by one sub-account only."}) from None


# An account a sub-account stopped using is still pulled this long, for late corrections (DESIGN §4).
OLD_ACCOUNT_PULL_DAYS = 35


def _claim_account(*, provider: SubAccountProvider, before: dict[str, Any], retired_until: datetime) -> None:
    """Claim the provider's account platform-wide and let go of the Twilio account it used before, once its
    pulls end (`retired_until`): until then no one else may bill it."""
    twilio_account_claim(account_sid=provider.account_sid, subaccount_id=provider.subaccount_id)
    previous = before.get("twilio_account_sid") or ""
    if previous and previous != provider.account_sid:
        twilio_account_release(account_sid=previous, subaccount_id=provider.subaccount_id, after=retired_until)


_CHANGED_MEANWHILE = "Someone else changed this sub-account's phone provider just now; reload and try again."


@dataclass(frozen=True)
class _InUse:
    """The account a provider row pointed at before a change (and how to read it)."""

    provider: str
    account_sid: str
    twilio_auth_token_encrypted: str

    @classmethod
    def of(cls, provider: SubAccountProvider | None) -> _InUse | None:
        if provider is None or not provider.provider:
            return None
        return cls(provider.provider, provider.account_sid, provider.twilio_auth_token_encrypted)


def _retire(*, previous: _InUse | None, provider: SubAccountProvider, now: datetime, retired_until: datetime) -> None:
    """The account the sub-account leaves is pulled until `retired_until` (late corrections); the one it
    (re)joins is its current account again."""
    RetiredAccount.objects.filter(subaccount_id=provider.subaccount_id, account_sid=provider.account_sid).delete()
    if previous is None or previous.account_sid == provider.account_sid:
        return
    RetiredAccount.objects.update_or_create(
        subaccount_id=provider.subaccount_id, account_sid=previous.account_sid,
        defaults={"provider": previous.provider, "retired_at": now, "pull_until": retired_until,
                  "twilio_auth_token_encrypted": previous.twilio_auth_token_encrypted
                  if previous.provider == PhoneProvider.TWILIO else ""})


def _activate_and_audit(*, provider: SubAccountProvider, by: User, action: str, before: dict[str, Any],
                        previous: _InUse | None) -> SubAccountProvider:
    """Save a provider that was just (re)configured as active, with its audit row, in the caller's transaction."""
    provider.status = ProviderStatus.ACTIVE
    provider.last_error, provider.last_error_at = "", None
    if previous is None or previous.account_sid != provider.account_sid:
        provider.read_marks = {}  # they were another account's
        # "Usage last read" spoke of the previous account; nothing of this one has been read yet.
        provider.last_pulled_at = None
    provider.save()
    now = timezone.now()
    retired_until = now + timedelta(days=OLD_ACCOUNT_PULL_DAYS)
    _claim_account(provider=provider, before=before, retired_until=retired_until)
    _retire(previous=previous, provider=provider, now=now, retired_until=retired_until)
    audit_record(subaccount=provider.subaccount, actor=by.email, action=action, before=before,
                 after=_snapshot(provider))
    agency_usage_pull_due_now(schema_name=current_schema())  # its first pull at beat's next tick
    return provider


@transaction.atomic
def _twilio_save(*, subaccount: SubAccount, account_sid: str, auth_token: str, by: User) -> SubAccountProvider:
    provider = _locked_provider(subaccount)
    before, previous = _snapshot(provider), _InUse.of(provider)
    action = AuditEntry.Action.PROVIDER_SET
    if provider is None:
        provider = SubAccountProvider(subaccount=subaccount)
    elif provider.provider == PhoneProvider.TWILIO:
        action = AuditEntry.Action.CREDENTIALS_UPDATED
    provider.provider = PhoneProvider.TWILIO
    provider.twilio_account_sid = account_sid
    provider.twilio_auth_token_encrypted = secret_encrypt(auth_token)
    provider.twilio_auth_token_last4 = auth_token[-4:]
    provider = _activate_and_audit(provider=provider, by=by, action=action, before=before, previous=previous)
    if previous is not None and previous.provider == PhoneProvider.LC_PHONE:
        # Off the platform's bill: its LC Phone subaccount must not run up usage any more.
        from phone.tasks import lc_phone_subaccount_suspend

        provider_id = provider.pk
        transaction.on_commit(lambda: lc_phone_subaccount_suspend.delay(provider_id))
    if before.get("status") == ProviderStatus.CREDENTIALS_INVALID:
        # Pulls stopped while the credentials were bad: catch up now, not at the next beat.
        from phone.tasks import usage_pull_subaccount

        provider_id = provider.pk
        transaction.on_commit(lambda: usage_pull_subaccount.delay(provider_id))
    return provider


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
    resumed = bool(lc_phone_account_sid)
    if not lc_phone_account_sid:
        lc_phone_account_sid = _lc_phone_subaccount_create(subaccount)
    else:
        # It was suspended when the sub-account left LC Phone: usable again before the switch is saved.
        _lc_phone_subaccount_set_status(lc_phone_account_sid, "active")

    try:
        return _lc_phone_save(subaccount=subaccount, lc_phone_account_sid=lc_phone_account_sid, by=by,
                              resumed=resumed)
    except IntegrityError:  # another admin set this sub-account's first provider at the same moment
        raise ValidationError(_CHANGED_MEANWHILE) from None
    except AccountSidTaken:  # only if the platform handed one LC Phone subaccount out twice
        log.error("LC Phone subaccount %s is claimed by another sub-account", lc_phone_account_sid)
        raise ValidationError("LC Phone could not be set up right now; nothing was changed.") from None


@transaction.atomic
def _lc_phone_save(*, subaccount: SubAccount, lc_phone_account_sid: str, by: User,
                   resumed: bool = False) -> SubAccountProvider:
    provider = _locked_provider(subaccount)
    before, previous = _snapshot(provider), _InUse.of(provider)
    action = AuditEntry.Action.PROVIDER_SET if provider is None else AuditEntry.Action.MOVED_TO_LC_PHONE
    if provider is None:
        provider = SubAccountProvider(subaccount=subaccount)
    elif provider.provider == PhoneProvider.LC_PHONE:  # a concurrent request got there first
        return provider
    provider.provider = PhoneProvider.LC_PHONE
    provider.lc_phone_account_sid = provider.lc_phone_account_sid or lc_phone_account_sid
    provider.twilio_account_sid = ""
    provider.twilio_auth_token_encrypted = ""
    provider.twilio_auth_token_last4 = ""
    provider = _activate_and_audit(provider=provider, by=by, action=action, before=before, previous=previous)
    if resumed:
        audit_record(subaccount=subaccount, actor=by.email, action=AuditEntry.Action.LC_PHONE_RESUMED,
                     before={"lc_phone_account_sid": lc_phone_account_sid, "status": "suspended"},
                     after={"lc_phone_account_sid": lc_phone_account_sid, "status": "active"})
    return provider


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


def _lc_phone_status_set(account_sid: str, status: Literal["active", "suspended"]) -> None:
    """Set an LC Phone subaccount's status with the platform's master account (errors raised as the client's)."""
    master = master_access()
    set_account_status(account_sid=account_sid, status=status, auth_sid=master.auth_sid,
                       auth_token=master.auth_token, base_url=twilio_base_url(), timeout=twilio_timeout(),
                       retry=twilio_retry())


def _lc_phone_subaccount_set_status(account_sid: str, status: Literal["active", "suspended"]) -> None:
    try:
        _lc_phone_status_set(account_sid, status)
    except (LcPhoneNotConfigured, CredentialsInvalid, UsageFetchError) as error:
        log.error("Setting LC Phone subaccount %s %s failed: %s", account_sid, status, error)
        raise ValidationError("LC Phone could not be set up right now; nothing was changed. Try again later.") from None


def provider_lc_phone_suspend(*, provider_id: int) -> bool:
    """Suspend the LC Phone subaccount of a sub-account that left LC Phone (no more usage on the
    platform's bill). Safe to run twice; does nothing if the sub-account is back on LC Phone.

    Raises UsageFetchError / CredentialsInvalid / LcPhoneNotConfigured for the task to retry.
    """
    provider = SubAccountProvider.objects.filter(pk=provider_id).first()
    if provider is None or provider.provider == PhoneProvider.LC_PHONE or not provider.lc_phone_account_sid:
        return False
    _lc_phone_status_set(provider.lc_phone_account_sid, "suspended")
    with transaction.atomic():
        locked = SubAccountProvider.objects.select_for_update().get(pk=provider_id)
        if locked.provider == PhoneProvider.LC_PHONE:
            # Moved back while we were suspending: the move resumed it first, so it is resumed again, by a job of
            # its own retried until Twilio answers (a retry of this one would find the client on LC Phone and stop).
            from phone.tasks import lc_phone_subaccount_resume

            transaction.on_commit(partial(lc_phone_subaccount_resume.delay, provider_id))
            return False
        audit_record(
            subaccount=locked.subaccount_id, actor="platform", action=AuditEntry.Action.LC_PHONE_SUSPENDED,
            before={"lc_phone_account_sid": locked.lc_phone_account_sid, "status": "active"},
            after={"lc_phone_account_sid": locked.lc_phone_account_sid, "status": "suspended"})
    log.info("LC Phone subaccount %s of sub-account %s suspended", locked.lc_phone_account_sid, locked.subaccount_id)
    return True


def provider_lc_phone_resume(*, provider_id: int) -> bool:
    """Make the LC Phone subaccount of a sub-account on LC Phone active again: a suspension that reached Twilio
    after the move back had resumed it left it suspended. Safe to run twice; does nothing if the sub-account has
    left LC Phone again (its move queued the suspension).

    Raises UsageFetchError / CredentialsInvalid / LcPhoneNotConfigured for the task to retry.
    """
    provider = SubAccountProvider.objects.filter(pk=provider_id).first()
    if provider is None or provider.provider != PhoneProvider.LC_PHONE or not provider.lc_phone_account_sid:
        return False
    _lc_phone_status_set(provider.lc_phone_account_sid, "active")
    with transaction.atomic():
        locked = SubAccountProvider.objects.select_for_update().get(pk=provider_id)
        if locked.provider != PhoneProvider.LC_PHONE:
            # Left LC Phone again while we were resuming: its suspension may have reached Twilio first.
            from phone.tasks import lc_phone_subaccount_suspend

            transaction.on_commit(partial(lc_phone_subaccount_suspend.delay, provider_id))
            return False
    log.info("LC Phone subaccount %s of sub-account %s resumed after a late suspension", locked.lc_phone_account_sid,
             locked.subaccount_id)
    return True


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
        audit_record(subaccount=locked.subaccount_id, actor="Twilio", action=AuditEntry.Action.CREDENTIALS_REJECTED,
                     before=before, after=_snapshot(locked))
    return True


def provider_record_error(*, provider: SubAccountProvider, reason: str) -> None:
    SubAccountProvider.objects.filter(pk=provider.pk).update(
        last_error=reason[:500], last_error_at=timezone.now(), updated_at=timezone.now()
    )
