"""`manage.py wallet_audit [--schema S] [--stripe-days N]`: balance == Σ entries for every client wallet of every
agency (or one) and every agency's wallet with the platform (or that one's), one credit per succeeded charge, and
succeeded charges as Stripe has them. Exit 1 on any difference."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from agencies.selectors import agencies_all
from agency_wallets.charging import agency_wallets_audit
from wallets.services import wallets_audit


class Command(BaseCommand):
    help = "Check every wallet's balance against its ledger (and recent charges against Stripe)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--schema", help="only this agency's schema")
        parser.add_argument("--stripe-days", type=int, default=0,
                            help="also check charges that succeeded in the last N days against Stripe")

    def handle(self, *args: Any, **options: Any) -> None:
        agencies = agencies_all()
        if options["schema"]:
            agencies = agencies.filter(schema_name=options["schema"])
            if not agencies.exists():
                raise CommandError(f"No agency with schema {options['schema']!r}")
        since = timezone.now() - timedelta(days=options["stripe_days"]) if options["stripe_days"] else None
        problems = 0
        for agency in agencies.iterator():
            with tenant_context(agency):
                for finding in wallets_audit(stripe_since=since):
                    problems += 1
                    self.stdout.write(f"{agency.schema_name}: {finding}")
        for finding in agency_wallets_audit(stripe_since=since, agencies=agencies):
            problems += 1
            self.stdout.write(f"platform: {finding}")
        self.stdout.write(f"{problems} difference(s) found.")
        if problems:
            raise SystemExit(1)
