from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from agencies.models import Agency


def agencies_all() -> QuerySet[Agency]:
    """Every agency, never the platform's own (public) tenant row."""
    return Agency.objects.exclude(schema_name=get_public_schema_name()).order_by("pk")


def agency_primary_domain(*, agency: Agency) -> str:
    domain = agency.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    return domain or ""

