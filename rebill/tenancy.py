"""The one place that asks django-tenants which schema this connection is in."""

from django.db import connection
from django_tenants.utils import get_public_schema_name


def current_schema() -> str:
    return str(connection.schema_name)  # type: ignore[attr-defined]  # set by django-tenants' backend


def in_public_schema() -> bool:
    return current_schema() == get_public_schema_name()


def schema_to_public() -> None:
    connection.set_schema_to_public()  # type: ignore[attr-defined]  # django-tenants' backend
