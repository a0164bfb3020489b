from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agencies.backup import BackupError, agency_dump
from agencies.models import Agency


class Command(BaseCommand):
    help = "Dump one agency's schema (pg_dump custom format); restore it with agency_restore."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--output", required=True, type=Path)

    def handle(self, *args, slug: str, output: Path, **options):
        agency = Agency.objects.filter(slug=slug).first()
        if agency is None or agency.is_platform:
            raise CommandError(f"No agency with the slug {slug!r}.")
        try:
            agency_dump(agency=agency, output=output)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{agency.name} ({agency.schema_name}) dumped to {output}")
