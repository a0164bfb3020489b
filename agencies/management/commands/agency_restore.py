from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agencies.backup import BackupError, agency_restore


class Command(BaseCommand):
    help = "Restore a dump made by agency_dump into a fresh database (given by its URL)."

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True, type=Path, dest="dump")
        parser.add_argument("--database-url", required=True, help="e.g. postgres://postgres@127.0.0.1:5432/restored")

    def handle(self, *args, dump: Path, database_url: str, **options):
        if not dump.is_file():
            raise CommandError(f"{dump} is not a file.")
        try:
            agency_restore(dump=dump, database_url=database_url)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{dump} restored")
