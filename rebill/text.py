"""Text that people type and that we put in places with rules: names, and email headers built from them."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

# Control characters (line breaks, tabs, NUL, ...) and Unicode's own line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(character) in _REFUSED_CATEGORIES for character in value)


def validate_name(value: str) -> None:
    """A name is one line of text: a line break in a name would end up in email headers and page layouts."""
    if _has_control_characters(value):
        raise ValidationError("Use one line of text: no line breaks, tabs or other control characters.",
                              code="control_characters")


def header_safe(text: str, *, max_length: int = 120) -> str:
    """A value that is safe in an email header whatever it was built from: one line, no control characters."""
    flat = "".join(" " if unicodedata.category(c) in _REFUSED_CATEGORIES else c for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= max_length else flat[: max_length - 1].rstrip() + "…"
