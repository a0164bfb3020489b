"""Re-read usage for a date range: one sub-account or all, in one agency or all.

Safe to run at any time, even next to the regular pull: it stores through the same locked, idempotent
upsert (an older read never overwrites a newer one).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context
from tqdm import tqdm

from agencies.models import Agency
from agencies.selectors import agencies_all
from phone.models import SubAccountProvider
from phone.selectors import providers_to_pull
from phone.services import PullOutcome, usage_pull
from phone.usage_client import TwilioClientError

# Bounds each read and each transaction; Twilio's page size caps a request anyway.
CHUNK_DAYS = 31


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _chunks(start: date, end: date) -> list[tuple[date, date]]:
    chunks = []
    while start <= end:
        last = min(start + timedelta(days=CHUNK_DAYS - 1), end)
        chunks.append((start, last))
        start = last + timedelta(days=1)
    return chunks


class Command(BaseCommand):
    help = "Backfill phone usage lines for a date range (UTC days, inclusive) from Twilio."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, type=_day, help="First UTC day, YYYY-MM-DD")
        parser.add_argument("--end", required=True, type=_day, help="Last UTC day, YYYY-MM-DD")
        parser.add_argument("--schema", help="Only this agency (its schema name); default: every agency")
        parser.add_argument("--subaccount", type=int, help="Only this sub-account id (needs --schema)")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (e.g. in logs)")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = options["start"], options["end"]
        if start > end:
            raise CommandError("--start is after --end")
        if options["subaccount"] is not None and not options["schema"]:
            raise CommandError("--subaccount needs --schema: sub-account ids are per agency")
        agencies = agencies_all()
        if options["schema"]:
            agencies = agencies.filter(schema_name=options["schema"])
            if not agencies.exists():
                raise CommandError(f"No agency with schema {options['schema']!r}")

        work: list[tuple[Agency, int]] = []
        for agency in agencies:
            with tenant_context(agency):
                providers = providers_to_pull()
                if options["subaccount"] is not None:
                    if not SubAccountProvider.objects.filter(subaccount_id=options["subaccount"]).exists():
                        raise CommandError(f"Sub-account {options['subaccount']} of {agency.schema_name} "
                                           "has no phone provider (or does not exist)")
                    providers = providers.filter(subaccount_id=options["subaccount"])
                work.extend((agency, pk) for pk in providers.values_list("pk", flat=True))

        chunks = _chunks(start, end)
        stored = failed = skipped = 0
        self.stderr.ending = ""  # tqdm redraws its bar with \r and writes its own line ends
        with tqdm(total=len(work) * len(chunks), unit="pull", disable=options["no_progress"],
                  file=self.stderr) as progress:
            for agency, provider_id in work:
                with tenant_context(agency):
                    for first, last in chunks:
                        progress.set_postfix_str(f"{agency.schema_name} provider {provider_id} {first}")
                        try:
                            result = usage_pull(provider_id=provider_id, start=first, end=last)
                        except TwilioClientError as error:
                            failed += 1
                            progress.write(f"{agency.schema_name} provider {provider_id} {first}..{last}: {error}")
                        else:
                            if result.outcome == PullOutcome.STORED:
                                stored += result.records
                            else:
                                skipped += 1
                                progress.write(f"{agency.schema_name} provider {provider_id}: {result.outcome}")
                        progress.update(1)
        summary = f"Backfilled {stored} usage records for {len(work)} sub-account(s), {start}..{end}"
        if skipped:
            summary += f"; {skipped} pull(s) skipped"
        if failed:
            raise CommandError(f"{summary}; {failed} pull(s) failed (see above). Run it again to complete them.")
        self.stdout.write(self.style.SUCCESS(summary))
