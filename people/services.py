"""Writes about people: creating users, invitations, sign-in."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest

from people.lockout import login_attempt_reserve, login_attempts_clear
from people.models import User
from rebill.mail import email_send
from rebill.tenancy import current_schema
from rebill.text import validate_name


class LoginRefused(Exception):
    pass


def _clean_email(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"{email!r} is not a valid email address."}) from None
    return email


@transaction.atomic
def user_create(*, email: str, full_name: str = "", password: str | None, role: str) -> User:
    """A user in the current schema. No password: the user must accept an invitation to set one."""
    email = _clean_email(email)
    if role not in User.Role.values or role == User.Role.PLATFORM_STAFF:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if User.objects.filter(email=email).exists():
        raise ValidationError({"email": f"A user with the email {email} already exists."})
    try:
        validate_name(full_name)
    except ValidationError as error:
        raise ValidationError({"full_name": error.messages}) from None
    user = User(email=email, full_name=full_name.strip(), role=role)
    if password:
        validate_password(password, user)
    user.set_password(password or None)  # no password (None or "") gives an unusable password
    user.save()
    return user


def _locked_out() -> LoginRefused:
    minutes = int(settings.LOGIN_LOCKOUT.total_seconds() // 60)
    return LoginRefused(f"Too many failed sign-in attempts. Try again in {minutes} minutes.")


def user_sign_in(*, request: HttpRequest, email: str, password: str) -> User:
    email = email.strip().lower()
    # Reserved before the password is checked, so parallel attempts cannot all pass a "not locked yet" test.
    attempt = login_attempt_reserve(email=email)
    if attempt > settings.LOGIN_FAILURE_LIMIT:
        raise _locked_out()
    user = authenticate(request, username=email, password=password)
    if user is None:
        if attempt >= settings.LOGIN_FAILURE_LIMIT:
            raise _locked_out()
        raise LoginRefused("Wrong email or password.")
    login_attempts_clear(email=email)
    assert isinstance(user, User)
    return user


_invitation_tokens = PasswordResetTokenGenerator()


def _invitation_salt() -> str:
    # Bound to the agency's schema: a link made on one agency's domain means nothing on another's.
    return f"people.invitation:{current_schema()}"


def invitation_token_make(*, user: User) -> str:
    """A signed, expiring token that works once: it embeds a reset token that changes with the password."""
    return signing.dumps({"user": user.pk, "token": _invitation_tokens.make_token(user)}, salt=_invitation_salt())


def invitation_user(*, token: str) -> User:
    try:
        payload = signing.loads(
            token, salt=_invitation_salt(), max_age=settings.INVITATION_MAX_AGE
        )
    except signing.SignatureExpired:
        raise ValidationError("This invitation has expired. Ask your agency to send a new one.") from None
    except signing.BadSignature:
        raise ValidationError("This invitation link is not valid.") from None
    user = User.objects.filter(pk=payload.get("user"), is_active=True).first()
    if user is None or not _invitation_tokens.check_token(user, payload.get("token", "")):
        raise ValidationError("This invitation link has already been used or is no longer valid.")
    return user


@transaction.atomic
def invitation_accept(*, token: str, password: str) -> User:
    user = invitation_user(token=token)
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def invitation_send(*, user: User, accept_url: str, inviter: User | None, place: str) -> str | None:
    """Email the invitation (call it once the user is committed); None when sent, else why it was not."""
    return email_send(
        subject=f"You're invited to {place}",
        body=(
            f"{inviter or 'The Rebill team'} invited you to {place}.\n\n"
            f"Set your password and sign in here (the link works once, for "
            f"{settings.INVITATION_MAX_AGE.days} days):\n{accept_url}\n"
        ),
        to=[user.email],
    )
