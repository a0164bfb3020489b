"""Sending email after the change it announces has been committed.

A change never waits for, nor is undone by, an email: the rows are committed first, then the email goes
out. When sending fails the failure is logged and returned, so the page can say so and offer to send again.
Subjects are always passed through `header_safe`.
"""

from __future__ import annotations

import logging

from django.core.mail import EmailMessage

from rebill.text import header_safe

logger = logging.getLogger(__name__)


def email_send(*, subject: str, body: str, to: list[str]) -> str | None:
    """Send one email; returns None when it went out, else a sentence saying it did not (and logs why)."""
    message = EmailMessage(subject=header_safe(subject), body=body, to=to)
    try:
        message.send()
    except Exception:
        logger.exception("Email %r to %s could not be sent", message.subject, ", ".join(to))
        return "The email could not be sent."
    return None
