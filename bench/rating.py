"""Benchmark of rating: usage deltas into client wallets, against the floor of one INSERT … SELECT.

    .venv/bin/python -m bench.rating [--subaccounts 10000] [--deltas-per-subaccount 100]

Builds one Pro agency in a scratch database whose sub-accounts are all rebilled LC Phone clients with a card,
and their usage deltas (20 lines × N/20 revisions each) written by SQL. Times `wallet_rate` for every sub-account
(each: the policy check, a wallet lock, one INSERT … SELECT through the ledger's chain trigger, the balance), then
one INSERT … SELECT writing the same entries into a copy of the ledger table (indexes, no triggers): the floor.
Prints both times and rating/floor. Goal ≤ 3. No Stripe call is made: recharges are not part of rating.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

from bench.scratch import scratch_database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subaccounts", type=int, default=10_000)
    parser.add_argument("--deltas-per-subaccount", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    with scratch_database("rebill_bench_rating"):
        return _run(subaccounts=args.subaccounts, per=args.deltas_per_subaccount)


def _run(*, subaccounts: int, per: int) -> int:
    import django

    django.setup()
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
    from wallets.models import WalletEntry
    from wallets.services import wallets_audit, wallets_rate

    lines_per = 20
    revisions = max(1, per // lines_per)
    total = subaccounts * lines_per * revisions
    print(f"Setting up: one Pro agency, {subaccounts:,} rebilled sub-accounts, {total:,} usage deltas", flush=True)
    call_command("migrate_schemas", "--shared", verbosity=0)
    platform_tenant_ensure()
    agency = agency_create(name="Bench", slug="bench", plan=Plan.PRO, admin_email="admin@bench.test",
                           admin_password="correct-horse-battery-42")
    account_id = "acct_1BenchBenchBenchB"
    stripe_account_record(agency=agency, account_id=account_id)
    switched_on_at = timezone.now() - datetime.timedelta(days=2)
    with tenant_context(agency):
        clients = SubAccount.objects.bulk_create(SubAccount(name=f"Client {n}") for n in range(subaccounts))
        owners = User.objects.bulk_create((User(email=f"owner{n}@bench-client.test", role=User.Role.CLIENT)
                                           for n in range(subaccounts)), batch_size=2000)
        Membership.objects.bulk_create((Membership(subaccount=c, user=u, role=Membership.Role.ACCOUNT_ADMIN)
                                        for c, u in zip(clients, owners, strict=True)), batch_size=2000)
        SubAccountProvider.objects.bulk_create((SubAccountProvider(subaccount=c, provider="lc_phone",
                                                                   lc_phone_account_sid=f"AC{n:032d}")
                                                for n, c in enumerate(clients)), batch_size=2000)
        BillingProfile.objects.bulk_create((BillingProfile(subaccount=c, stripe_account_id=account_id,
                                                           stripe_customer_id=f"cus_{n}",
                                                           card_payment_method_id=f"pm_{n}")
                                            for n, c in enumerate(clients)), batch_size=2000)
        SubAccountRebilling.objects.bulk_create((SubAccountRebilling(subaccount=c, switched_on=True,
                                                                     switched_on_at=switched_on_at,
                                                                     auto_recharge_threshold=0)
                                                 for c in clients), batch_size=2000)
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO phone_usageline (subaccount_id, provider, account_sid, category, day, product, usage_unit,
                    count, units, twilio_price, cost, currency, billed_cost, revision, fetched_at, created_at,
                    updated_at)
                SELECT s.id, 'lc_phone', p.lc_phone_account_sid, 'cat-' || c, current_date - (c %% 3),
                       (ARRAY['sms','mms','calls','phone_numbers','other'])[1 + c %% 5], 'units',
                       %(rev)s, %(rev)s, 0, 0.0079 * %(rev)s, 'usd', 0, %(rev)s, now(), now(), now()
                FROM subaccounts_subaccount s JOIN phone_subaccountprovider p ON p.subaccount_id = s.id,
                     generate_series(1, %(lines)s) c""", {"rev": revisions, "lines": lines_per})
            cursor.execute("""
                INSERT INTO phone_usagedelta (line_id, revision, units_delta, unit_price, cost_delta, currency,
                    fetched_at)
                SELECT l.id, r, 1, 0.0079, CASE WHEN r %% 7 = 0 THEN -0.0079 ELSE 0.0079 END, 'usd',
                       now() - interval '1 hour' + r * interval '1 second'
                FROM phone_usageline l, generate_series(1, %(rev)s) r""", {"rev": revisions})
            cursor.execute("ANALYZE")
        ids = [c.pk for c in clients]

        print("Rating every sub-account…", flush=True)
        began = time.perf_counter()
        rated = sum(result.entries for result in wallets_rate(subaccount_ids=ids).values())
        rating_seconds = time.perf_counter() - began
        assert rated == total, (rated, total)
        assert wallets_audit() == []

        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE ledger_floor (LIKE {WalletEntry._meta.db_table} INCLUDING DEFAULTS "
                           "INCLUDING INDEXES INCLUDING CONSTRAINTS)")
            began = time.perf_counter()
            cursor.execute("""
                INSERT INTO ledger_floor (id, wallet_id, seq, kind, amount, balance_after, usage_delta_id, product,
                    category, day, units_delta, cost_delta, multiplier, provider_account, note, created_by,
                    created_at)
                SELECT e.id, e.wallet_id, e.seq, e.kind, -round(d.cost_delta * 1.05, 6), e.balance_after, d.id,
                       l.product, l.category, l.day, d.units_delta, d.cost_delta, 1.05, l.account_sid, '', 'rating',
                       now()
                FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id
                JOIN wallets_walletentry e ON e.usage_delta_id = d.id""")
            floor_seconds = time.perf_counter() - began
            assert cursor.rowcount == total
    print(f"\nrated {total:,} deltas into {subaccounts:,} wallets: {rating_seconds:.1f} s "
          f"({total / rating_seconds:,.0f} deltas/s)")
    print(f"floor (one INSERT … SELECT into a copy of the ledger): {floor_seconds:.1f} s")
    print(f"rating bench: deltas={total} subaccounts={subaccounts} rating_s={rating_seconds:.2f} "
          f"floor_s={floor_seconds:.2f} rating/floor={rating_seconds / floor_seconds:.2f} goal<=3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
