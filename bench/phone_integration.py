"""Benchmark of the agency pages over 10,000 sub-accounts: Settings → Phone Integration and Manage Client.

    .venv/bin/python -m bench.phone_integration [--subaccounts 10000] [--requests 60]

Builds one Pro agency (Stripe connected) in a scratch database with sub-accounts of every rebilling shape
(providers, account admins, cards, switched on), then times requests through Django's full stack (middleware,
tenant routing, session, template) in-process. Prints p50/p95 server time per page. Goal: p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench.scratch import scratch_database

PAGES = {
    "Phone Integration, first page": ("/agency/settings/phone-integration/", {}),
    "Phone Integration, filtered (can be enabled)": ("/agency/settings/phone-integration/",
                                                     {"state": "can_be_enabled"}),
    "Phone Integration, sorted by state, page 40": ("/agency/settings/phone-integration/",
                                                    {"sort": "state", "page": "40"}),
    "Phone Integration, search": ("/agency/settings/phone-integration/", {"q": "client 12"}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subaccounts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG keeps every query: not what production runs
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    with scratch_database("rebill_bench_pages"):
        return _run(subaccounts=args.subaccounts, requests=args.requests)


def _run(*, subaccounts: int, requests: int) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from agencies.plans import Plan
    from agencies.services import agency_create, platform_tenant_ensure
    from billing.models import BillingProfile
    from people.models import User
    from phone.models import ProviderStatus, SubAccountProvider
    from rebilling.models import SubAccountRebilling
    from stripe_connect.services import stripe_account_record
    from subaccounts.models import Membership, SubAccount

    print(f"Setting up: scratch database, one Pro agency with {subaccounts:,} sub-accounts", flush=True)
    call_command("migrate_schemas", "--shared", verbosity=0)
    platform_tenant_ensure()
    agency = agency_create(name="Bench", slug="bench", plan=Plan.PRO, admin_email="admin@bench.test",
                           admin_password="correct-horse-battery-42")
    account_id = "acct_1BenchBenchBenchB"
    stripe_account_record(agency=agency, account_id=account_id)
    with tenant_context(agency):
        clients = SubAccount.objects.bulk_create(SubAccount(name=f"Client {n}") for n in range(subaccounts))
        providers, people, memberships, profiles, switches = [], [], [], [], []
        for n, client in enumerate(clients):
            if n % 10 != 0:  # one in ten has no provider yet
                twilio = n % 3 == 0
                providers.append(SubAccountProvider(
                    subaccount=client, provider="twilio" if twilio else "lc_phone",
                    lc_phone_account_sid="" if twilio else f"AC{n:032d}",
                    twilio_account_sid=f"AC{n:032d}" if twilio else "",
                    twilio_auth_token_encrypted="x" if twilio else "",
                    status=ProviderStatus.CREDENTIALS_INVALID if n % 17 == 0 else ProviderStatus.ACTIVE))
            if n % 4 != 0:
                people.append(User(email=f"owner{n}@bench-client.test", role=User.Role.CLIENT))
            if n % 5 != 0:
                profiles.append(BillingProfile(subaccount=client, stripe_account_id=account_id,
                                               stripe_customer_id=f"cus_{n}", card_payment_method_id=f"pm_{n}",
                                               card_brand="visa", card_last4="4242"))
            if n % 2 == 0:
                switches.append(SubAccountRebilling(subaccount=client, switched_on=True, switched_on_at=timezone.now()))
        SubAccountProvider.objects.bulk_create(providers, batch_size=2000)
        User.objects.bulk_create(people, batch_size=2000)
        owners = {user.email: user for user in User.objects.filter(role=User.Role.CLIENT)}
        for n, client in enumerate(clients):
            if n % 4 != 0:
                memberships.append(Membership(subaccount=client, user=owners[f"owner{n}@bench-client.test"],
                                              role=Membership.Role.ACCOUNT_ADMIN))
        Membership.objects.bulk_create(memberships, batch_size=2000)
        BillingProfile.objects.bulk_create(profiles, batch_size=2000)
        SubAccountRebilling.objects.bulk_create(switches, batch_size=2000)
        admin = User.objects.get(email="admin@bench.test")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = Client(HTTP_HOST="bench.localhost")
    with tenant_context(agency):
        client.force_login(admin)
    pages = dict(PAGES)
    pages["Manage Client"] = (f"/agency/subaccounts/{clients[subaccounts // 2 + 1].pk}/", {})

    print(f"\n{'page':<48} {'p50 ms':>8} {'p95 ms':>8}")
    worst = 0.0
    for label, (url, params) in pages.items():
        client.get(url, params)  # warm up
        timings = []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (label, response.status_code)
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[-1]
        worst = max(worst, p95)
        print(f"{label:<48} {p50:>8.1f} {p95:>8.1f}", flush=True)
    print(f"\nphone integration bench: subaccounts={subaccounts} worst_p95_ms={worst:.1f} goal_ms=50")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
