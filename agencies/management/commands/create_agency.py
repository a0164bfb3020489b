from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agencies.plans import BillingPeriod, Plan
from agencies.selectors import agency_primary_domain
from agencies.services import agency_create


class Command(BaseCommand):
    help = "Create an agency: its schema, its domain(s) and its first agency admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--plan", required=True, help=f"One of: {', '.join(Plan.values)}")
        parser.add_argument("--billing-period", default=BillingPeriod.MONTHLY, help="monthly or annual")
        parser.add_argument("--domain", dest="custom_domain", default=None, help="Optional white-label domain")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", dest="admin_full_name", default="")
        parser.add_argument("--admin-password", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            agency = agency_create(
                name=options["name"],
                slug=options["slug"],
                plan=options["plan"],
                billing_period=options["billing_period"],
                custom_domain=options["custom_domain"],
                admin_email=options["admin_email"],
                admin_full_name=options["admin_full_name"],
                admin_password=options["admin_password"],
            )
        except ValidationError as error:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
            raise CommandError(f"Agency not created. {details}") from None
        self.stdout.write(self.style.SUCCESS(f"Created {agency.name} at {agency_primary_domain(agency=agency)}"))
