"""Encryption at rest for agencies' Twilio auth tokens (Fernet, keys from PHONE_CREDENTIALS_KEYS).

Several keys may be configured for rotation: the first encrypts, any of them decrypts.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored ciphertext does not decrypt with any configured key."""


def _fernet() -> MultiFernet:
    keys = settings.PHONE_CREDENTIALS_KEYS
    if not keys:
        raise ImproperlyConfigured("PHONE_CREDENTIALS_KEYS must be set to store or read Twilio credentials.")
    return MultiFernet([Fernet(key) for key in keys])


def secret_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("A stored secret does not decrypt with the configured keys.") from None
