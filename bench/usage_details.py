"""Benchmark of credit usage details: the pages people open on a big history.

    .venv/bin/python -m bench.usage_details [--entries 1000000] [--subaccounts 10000] [--runs 20] [--vacuum]
    .venv/bin/python -m bench.usage_details --reuse rebill_bench_details_1234   # a database kept by an earlier run
    BENCH_PROFILE='agency dashboard' [BENCH_PROFILE_SORT=tottime] .venv/bin/python -m bench.usage_details --reuse …
                                                   # cProfile of one page, then its slowest queries

Builds one Pro agency in a scratch database with `--subaccounts` rebilled sub-accounts. One of them gets
`--entries` usage deltas over a year (5 products × 365 days), rated by `wallet_rate` itself (so its ledger and
its rollups are the real ones); their created_at is then spread over the year (triggers off, scratch database
only). The other sub-accounts get two months of daily rollups written by SQL (the dashboard reads only those).
Then times, through Django's test client (server time, no network): the first page of See details, a page deep
in the history (keyset), a filtered page, the month's CSV (time to first byte and total) and the agency
dashboard. Prints p50/p95 of each. Goal: p95 < 50 ms for pages.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from urllib.parse import urlsplit, urlunsplit

from bench.scratch import scratch_database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--subaccounts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vacuum", action="store_true",
                        help="VACUUM ANALYZE after seeding, as autovacuum does after a bulk load (pages all-visible)")
    parser.add_argument("--reuse", metavar="DATABASE",
                        help="time the pages of a database an earlier run kept (BENCH_KEEP_DATABASE=1): no setup")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG keeps every query: not what production runs
    if args.reuse:
        server = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
        os.environ["DATABASE_URL"] = urlunsplit(server._replace(path=f"/{args.reuse}"))
        return _time(runs=args.runs)
    with scratch_database("rebill_bench_details"):
        return _build(entries=args.entries, subaccounts=args.subaccounts, runs=args.runs, vacuum=args.vacuum)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def _build(*, entries: int, subaccounts: int, runs: int, vacuum: bool = False) -> int:  # noqa: PLR0915
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from agencies.plans import Plan
    from agencies.services import agency_create, platform_tenant_ensure
    from billing.models import BillingProfile
    from people.models import User
    from phone.models import SubAccountProvider
    from rebilling.models import SubAccountRebilling
    from stripe_connect.services import stripe_account_record
    from subaccounts.models import Membership, SubAccount
    from wallets.services import wallet_rate

    days, products = 365, ["sms", "mms", "calls", "phone_numbers", "other"]
    revisions = -(-entries // (days * len(products)))
    print(f"Setting up: {subaccounts:,} sub-accounts; one with {days * len(products) * revisions:,} entries",
          flush=True)
    call_command("migrate_schemas", "--shared", verbosity=0)
    platform_tenant_ensure()
    agency = agency_create(name="Bench", slug="bench", plan=Plan.PRO, admin_email="admin@bench.test",
                           admin_password="correct-horse-battery-42")
    account_id = "acct_1BenchBenchBenchB"
    stripe_account_record(agency=agency, account_id=account_id)
    began_setup = time.perf_counter()
    with tenant_context(agency):
        clients = SubAccount.objects.bulk_create((SubAccount(name=f"Client {n}") for n in range(subaccounts)),
                                                 batch_size=2000)
        big = clients[0]
        owner = User.objects.create(email="owner@bench-client.test", role=User.Role.CLIENT)
        Membership.objects.create(subaccount=big, user=owner, role=Membership.Role.ACCOUNT_ADMIN)
        SubAccountProvider.objects.create(subaccount=big, provider="lc_phone", lc_phone_account_sid="AC" + "1" * 32)
        BillingProfile.objects.create(subaccount=big, stripe_account_id=account_id, stripe_customer_id="cus_big",
                                      card_payment_method_id="pm_big")
        SubAccountRebilling.objects.create(subaccount=big, switched_on=True,
                                           switched_on_at=timezone.now() - timedelta(days=400),
                                           auto_recharge_threshold=0)
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO phone_usageline (subaccount_id, provider, account_sid, category, day, product, usage_unit,
                    count, units, twilio_price, cost, currency, billed_cost, revision, fetched_at, created_at,
                    updated_at)
                SELECT %(big)s, 'lc_phone', 'AC' || repeat('1', 32), 'cat-' || p, current_date - d, p, 'units',
                       %(rev)s, %(rev)s, 0, 0.0079 * %(rev)s, 'usd', 0, %(rev)s, now(), now(), now()
                FROM generate_series(0, %(days)s - 1) d, unnest(%(products)s::text[]) p""",
                           {"big": big.pk, "rev": revisions, "days": days, "products": products})
            cursor.execute("""
                INSERT INTO phone_usagedelta (line_id, revision, units_delta, unit_price, cost_delta, currency,
                    fetched_at)
                SELECT l.id, r, 1 + r %% 3, 0.0079, CASE WHEN r %% 97 = 0 THEN -0.0079 ELSE 0.0079 * (1 + r %% 3) END,
                       'usd', now() - interval '1 hour'
                FROM phone_usageline l, generate_series(1, %(rev)s) r""", {"rev": revisions})
        print("Rating the big sub-account…", flush=True)
        began = time.perf_counter()
        rated = wallet_rate(subaccount_id=big.pk).entries
        print(f"  rated {rated:,} entries in {time.perf_counter() - began:.1f} s", flush=True)
        with connection.cursor() as cursor:
            # Spread the history over the year (the scratch database only: the ledger's triggers refuse updates).
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("UPDATE wallets_walletentry SET created_at = now() - interval '365 days'"
                           " + seq * (interval '365 days' / %s)", [rated])
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("TRUNCATE creditusage_ledgerdaytotal")  # rebuilt for the spread created_at
            cursor.execute("""
                INSERT INTO creditusage_ledgerdaytotal
                    (wallet_id, day, product, sign, entries, amount, usage_cost, usage_amount)
                SELECT e.wallet_id, (e.created_at AT TIME ZONE 'UTC')::date, e.product, sign(e.amount)::smallint,
                       count(*), sum(e.amount),
                       coalesce(sum(e.cost_delta) FILTER (WHERE e.usage_delta_id IS NOT NULL), 0),
                       coalesce(sum(-e.amount) FILTER (WHERE e.usage_delta_id IS NOT NULL), 0)
                FROM wallets_walletentry e GROUP BY 1, 2, 3, 4""")
            cursor.execute("""
                INSERT INTO creditusage_usagerollup (subaccount_id, day, product, units, cost, revenue, entries)
                SELECT s.id, current_date - d, p, 10 + s.id %% 50, (10 + s.id %% 50) * 0.0079,
                       round((10 + s.id %% 50) * 0.0079 * 1.05, 6), 1
                FROM subaccounts_subaccount s, generate_series(0, 59) d, unnest(ARRAY['sms','calls','mms']) p
                WHERE s.id <> %s""", [big.pk])
            cursor.execute("""
                TRUNCATE creditusage_usagemonthrollup, creditusage_agencydayrollup, creditusage_subaccountmonthtotal,
                         creditusage_subaccountspantotal;
                INSERT INTO creditusage_usagemonthrollup (subaccount_id, month, product, units, cost, revenue, entries)
                SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(revenue),
                       sum(entries)
                FROM creditusage_usagerollup GROUP BY 1, 2, 3;
                INSERT INTO creditusage_agencydayrollup (day, product, cost, revenue)
                SELECT day, product, sum(cost), sum(revenue) FROM creditusage_usagerollup GROUP BY 1, 2;
                INSERT INTO creditusage_subaccountmonthtotal (subaccount_id, month, cost, revenue)
                SELECT subaccount_id, month, sum(cost), sum(revenue) FROM creditusage_usagemonthrollup GROUP BY 1, 2;
                INSERT INTO creditusage_subaccountspantotal (span_days, span_start, subaccount_id, revenue, cost)
                SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
                       subaccount_id, sum(revenue), sum(cost)
                FROM creditusage_usagerollup CROSS JOIN unnest(ARRAY[1, 2, 4, 8, 16, 32]) AS s(days)
                GROUP BY 1, 2, 3;
                TRUNCATE creditusage_subaccountproductspantotal;
                INSERT INTO creditusage_subaccountproductspantotal
                    (span_days, span_start, product, subaccount_id, revenue, cost)
                SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
                       product, subaccount_id, sum(revenue), sum(cost)
                FROM creditusage_usagerollup CROSS JOIN unnest(ARRAY[1, 2, 4, 8, 16, 32]) AS s(days)
                GROUP BY 1, 2, 3, 4""")
            # The provider cost of every sub-account's usage (its trigger keeps it from the deltas): the rebilled
            # ones' usage, and as much again not rebilled.
            cursor.execute("""
                INSERT INTO creditusage_usagecostrollup (subaccount_id, day, product, units, cost, deltas)
                SELECT subaccount_id, day, product, units, cost * 2, 2 FROM creditusage_usagerollup
                WHERE subaccount_id <> %s;
                TRUNCATE creditusage_usagecostmonthrollup;
                INSERT INTO creditusage_usagecostmonthrollup (subaccount_id, month, product, units, cost, deltas)
                SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(deltas)
                FROM creditusage_usagecostrollup GROUP BY 1, 2, 3;
                TRUNCATE creditusage_agencycostdayrollup, creditusage_subaccountcostspantotal;
                INSERT INTO creditusage_agencycostdayrollup (day, product, units, cost, deltas)
                SELECT day, product, sum(units), sum(cost), sum(deltas) FROM creditusage_usagecostrollup GROUP BY 1, 2;
                INSERT INTO creditusage_subaccountcostspantotal (span_days, span_start, subaccount_id, cost)
                SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
                       subaccount_id, sum(cost)
                FROM creditusage_usagecostrollup CROSS JOIN unnest(ARRAY[1, 2, 4, 8, 16, 32]) AS s(days)
                GROUP BY 1, 2, 3;
                TRUNCATE creditusage_subaccountproductcostspantotal;
                INSERT INTO creditusage_subaccountproductcostspantotal
                    (span_days, span_start, product, subaccount_id, cost)
                SELECT s.days, date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days,
                       product, subaccount_id, sum(cost)
                FROM creditusage_usagecostrollup CROSS JOIN unnest(ARRAY[1, 2, 4, 8, 16, 32]) AS s(days)
                GROUP BY 1, 2, 3, 4""", [big.pk])
            cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
        print(f"  set up in {time.perf_counter() - began_setup:.0f} s", flush=True)
    connection.set_schema_to_public()
    return _time(runs=runs)


def _time(*, runs: int) -> int:
    """Time the pages of the database built by _build (or kept from an earlier run)."""
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from agencies.models import Agency
    from creditusage.selectors import Cursor
    from people.models import User
    from subaccounts.models import Membership
    from wallets.models import WalletEntry

    agency = Agency.objects.get(slug="bench")
    host = agency.domains.get(is_primary=True).domain
    with tenant_context(agency):
        owner = User.objects.get(email="owner@bench-client.test")
        big = Membership.objects.get(user=owner).subaccount
        rated = WalletEntry.objects.filter(wallet__subaccount=big).count()
        deep = WalletEntry.objects.filter(wallet__subaccount=big, seq=rated // 10).get()
        deep_cursor = Cursor(created_at=deep.created_at, seq=deep.seq).encode()
        admin = User.objects.get(email="admin@bench.test")
    connection.set_schema_to_public()

    client_browser, agency_browser = Client(HTTP_HOST=host), Client(HTTP_HOST=host)
    with tenant_context(agency):
        client_browser.force_login(owner)
        agency_browser.force_login(admin)
    today = timezone.now().date()
    month_start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    month_end = today.replace(day=1) - timedelta(days=1)
    base = f"/accounts/{big.pk}/billing/details/"
    pages = {
        "first page": (client_browser, base),
        "deep page (90% down)": (client_browser, f"{base}?after={deep_cursor}"),
        "filtered page": (client_browser, f"{base}?product=calls&direction=debit&start={today - timedelta(days=200)}"
                                          f"&end={today - timedelta(days=170)}"),
        "agency usage details": (agency_browser, f"/agency/subaccounts/{big.pk}/usage/"),
        "agency dashboard": (agency_browser, "/agency/settings/billing/details/"),
        "dashboard 45-day range": (agency_browser,
                                   f"/agency/settings/billing/details/?start={today - timedelta(days=44)}&end={today}"),
        "dashboard rebilled only": (agency_browser, "/agency/settings/billing/details/?rebilled_only=on"),
        # no whole month inside: both ends are partial months
        "dashboard 44 days, 2 edges": (agency_browser, f"/agency/settings/billing/details/?start="
                                                      f"{today - timedelta(days=50)}&end={today - timedelta(days=6)}"),
        "dashboard 45 days, sms": (agency_browser, f"/agency/settings/billing/details/?start="
                                                   f"{today - timedelta(days=44)}&end={today}&product=sms"),
    }
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        browser, url = pages[os.environ["BENCH_PROFILE"]]
        browser.get(url)  # imports and caches are the first request's, not the page's
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(runs):
            browser.get(url)
        profile.disable()
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(40)
        from django.db import reset_queries
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            browser.get(url)
        for query in sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:8]:
            print(f"{float(query['time']) * 1000:7.1f} ms  {query['sql'][:200]}")
        reset_queries()
    print(f"\nserver time over {runs} runs each:")
    for name, (browser, url) in pages.items():
        assert browser.get(url).status_code == 200, url
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            response = browser.get(url)
            samples.append(time.perf_counter() - began)
            assert response.status_code == 200
        print(f"  {name:27} {_percentiles(samples)}")
    first_bytes, totals, rows = [], [], 0
    csv_url = f"{base}?start={month_start}&end={month_end}&format=csv"
    for _ in range(max(3, runs // 4)):
        began = time.perf_counter()
        response = client_browser.get(csv_url)
        stream = iter(response.streaming_content)
        next(stream)
        first_bytes.append(time.perf_counter() - began)
        rows = 1 + sum(chunk.count(b"\n") for chunk in stream) - 1
        totals.append(time.perf_counter() - began)
    print(f"  {'month CSV first byte':27} {_percentiles(first_bytes)}")
    print(f"  {'month CSV total':27} {_percentiles(totals)}   ({rows:,} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
