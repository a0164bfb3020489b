"""Benchmark of the usage pull and its store: fake Twilio → parse → map → batched upsert, against COPY.

    .venv/bin/python -m bench.usage_pull [--lines 200000] [--subaccounts 2000] [--batch N]

Creates its own scratch database (on the server of DATABASE_URL, default 127.0.0.1:5432), agency and
fake Twilio process, and removes all of them at the end. Prints rows/s for
  (a) the whole pull, HTTP included (the production service, `--batch` sub-accounts per batch as the pull
      task stores them),
  (b) the first store of the same records (map, upsert and append usage deltas, in the same batches), from
      empty tables; the records are parsed beforehand (parsing is the client's work, timed apart),
  (c) the same store again with nothing changed (what most 5-minute pulls see: days whose records are those the
      last read stored are not sent to the database again),
  (d) the floor: COPY of the rows (b) wrote — lines and deltas — into the same tables, emptied the same way,
      with the same indexes, constraints and triggers; no store can write those rows for less,
and, for reference, (b) one sub-account per batch, COPY with the triggers disabled and COPY into a bare table.
The last line is `usage store: store_floor_ratio=<(b)/(d)> unchanged_rows_per_s=<(c)>`.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import requests

MASTER_SID = "AC" + "b" * 32
MASTER_TOKEN = "B" * 32
LEAVES_PER_DAY = 12  # the fake generates 12 billable leaves per day (plus 8 parents the pull ignores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="usage lines to pull (rounded up to whole days)")
    parser.add_argument("--subaccounts", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=None, help="sub-accounts per store batch (default: the task's)")
    args = parser.parse_args()
    days = math.ceil(args.lines / args.subaccounts / LEAVES_PER_DAY)

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    scratch = f"rebill_bench_{os.getpid()}"
    admin_url = urlunsplit(urlsplit(server)._replace(path="/postgres"))
    os.environ["DATABASE_URL"] = urlunsplit(urlsplit(server)._replace(path=f"/{scratch}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"

    from devservices.fake_twilio import bulk_generate, create_account, start_fake_twilio

    fake = start_fake_twilio()
    os.environ.update({"TWILIO_API_BASE": fake.url, "TWILIO_MASTER_ACCOUNT_SID": MASTER_SID,
                       "TWILIO_MASTER_AUTH_TOKEN": MASTER_TOKEN})
    _create_database(admin_url, scratch)
    try:
        create_account(fake.url, MASTER_SID, MASTER_TOKEN)
        return _run(fake.url, days=days, subaccounts=args.subaccounts, batch=args.batch, bulk_generate=bulk_generate)
    finally:
        from django.db import connections

        connections.close_all()
        _drop_database(admin_url, scratch)
        fake.stop()


def _run(fake_url: str, *, days: int, subaccounts: int, batch: int | None, bulk_generate) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from agencies.plans import PhoneProvider, Plan
    from agencies.services import agency_create
    from phone.models import SubAccountProvider, UsageDelta, UsageLine
    from phone.services import UsageRead, usage_pulls, usage_reads_store
    from phone.tasks import USAGE_PULL_BATCH
    from phone.usage_client import parse_usage_record
    from subaccounts.models import SubAccount

    say(f"Setting up: scratch database, one agency, {subaccounts:,} LC Phone sub-accounts, {days} days of usage")
    call_command("migrate_schemas", "--shared", verbosity=0)
    agency = agency_create(name="Bench", slug="bench", plan=Plan.PRO, admin_email="admin@bench.test",
                           admin_password=None)
    end = timezone.now().date()
    start = end - timedelta(days=days - 1)
    sids = bulk_generate(fake_url, accounts=subaccounts, start_date=start, days=days, parent_sid=MASTER_SID,
                         auth_token="x" * 32)["sids"]
    with tenant_context(agency):
        clients = SubAccount.objects.bulk_create(SubAccount(name=f"Client {n}") for n in range(subaccounts))
        SubAccountProvider.objects.bulk_create(
            SubAccountProvider(subaccount=client, provider=PhoneProvider.LC_PHONE, lc_phone_account_sid=sid)
            for client, sid in zip(clients, sids, strict=True)
        )
        providers = list(SubAccountProvider.objects.order_by("pk"))
        batch = batch or USAGE_PULL_BATCH
        batches = [providers[n:n + batch] for n in range(0, len(providers), batch)]

        # (a) the whole pull, as the pull task runs it (the window reaches back to the first day: never pulled)
        SubAccountProvider.objects.update(last_pulled_at=timezone.now() - timedelta(days=days - 1))
        began = time.perf_counter()
        for providers_of_batch in batches:
            usage_pulls(provider_ids=[provider.pk for provider in providers_of_batch])
        pull_seconds = time.perf_counter() - began
        lines = UsageLine.objects.count()
        assert UsageDelta.objects.count() == lines, "the pull must append one delta per new line"

        # The same records again, parsed into memory for (b) and (c).
        parse_seconds = 0.0
        records = {}
        for provider in providers:
            raw = _raw_records(fake_url, provider.lc_phone_account_sid, start, end)
            parse_began = time.perf_counter()
            records[provider.pk] = [record for item in raw
                                    if (record := parse_usage_record(item, provider.lc_phone_account_sid))]
            parse_seconds += time.perf_counter() - parse_began

        def store(providers_of_batches, fetched_at) -> float:
            began = time.perf_counter()
            for providers_of_batch in providers_of_batches:
                usage_reads_store([UsageRead(
                    subaccount_id=provider.subaccount_id, provider=provider.provider,
                    account_sid=provider.lc_phone_account_sid, fetched_at=fetched_at, records=records[provider.pk],
                    provider_id=provider.pk) for provider in providers_of_batch])
            return time.perf_counter() - began

        # For reference: the first store one sub-account per batch (as each pull stored itself before batches)
        _empty(connection)
        single_seconds = store([[provider] for provider in providers], timezone.now())
        assert UsageDelta.objects.count() == lines

        # (b) the first store, in batches, from empty tables as the floor below starts
        _empty(connection)
        store_seconds = store(batches, timezone.now())
        assert UsageLine.objects.count() == lines, "the store must produce the lines the pull did"
        assert UsageDelta.objects.count() == lines, "the store must append one delta per new line"

        # (c) the same store again, nothing changed
        unchanged_seconds = store(batches, timezone.now())
        assert set(UsageLine.objects.values_list("revision", flat=True)) == {1}
        assert UsageDelta.objects.count() == lines, "an unchanged line gets no delta"

        # (d) the floor: the rows (b) wrote, copied into the same tables emptied the same way
        stored = {table: _copy_out(connection, table) for table in ("phone_usageline", "phone_usagedelta")}
        _empty(connection)
        floor_seconds = _copy_into_tables(connection, stored)
        with connection.cursor() as cursor:  # for reference: what the triggers on the deltas cost the floor
            cursor.execute("ALTER TABLE phone_usagedelta DISABLE TRIGGER USER")
        _empty(connection)
        untriggered_seconds = _copy_into_tables(connection, stored)
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE phone_usagedelta ENABLE TRIGGER USER")
        bare_seconds = _copy_in_bare(connection, stored["phone_usageline"])

    rate = {name: lines / seconds for name, seconds in (
        ("pull", pull_seconds), ("store", store_seconds), ("unchanged", unchanged_seconds),
        ("floor", floor_seconds), ("single", single_seconds), ("untriggered", untriggered_seconds),
        ("bare", bare_seconds))}
    say("")
    say(f"{lines:,} usage lines ({subaccounts:,} sub-accounts x {days} days x {LEAVES_PER_DAY} categories), each with"
        f" its first usage delta; {batch} sub-accounts per batch")
    say(f"(a) whole pull, HTTP included      : {rate['pull']:>10,.0f} rows/s  ({pull_seconds:.2f} s)")
    say(f"(b) first store                    : {rate['store']:>10,.0f} rows/s  ({store_seconds:.2f} s)")
    say(f"(c) store again, nothing changed   : {rate['unchanged']:>10,.0f} rows/s  ({unchanged_seconds:.2f} s)")
    say(f"(d) floor: COPY lines + deltas     : {rate['floor']:>10,.0f} rows/s  ({floor_seconds:.2f} s)")
    say("For reference:")
    say(f"    first store, one sub-account per batch : {rate['single']:>10,.0f} rows/s  ({single_seconds:.2f} s)")
    say(f"    parsing the records (not in (b), (c))  : {lines / parse_seconds:>10,.0f} rows/s  ({parse_seconds:.2f} s)")
    say(f"    floor with the delta triggers disabled : {rate['untriggered']:>10,.0f} rows/s  "
        f"({untriggered_seconds:.2f} s)")
    say(f"    COPY lines into a bare table           : {rate['bare']:>10,.0f} rows/s  ({bare_seconds:.2f} s)")
    ratio = rate["store"] / rate["floor"]
    say(f"usage store: store_floor_ratio={ratio:.2f} unchanged_rows_per_s={rate['unchanged']:.0f}")
    return 0


def _empty(connection) -> None:
    """Empty the usage tables as a new agency's are (what rated the deltas goes with them), with fresh statistics."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE phone_usagedelta, phone_usageline CASCADE")
        cursor.execute("UPDATE phone_subaccountprovider SET read_marks = '{}', read_digests = '{}'")
        cursor.execute("ANALYZE phone_usageline, phone_usagedelta, phone_subaccountprovider")


def _raw_records(fake_url: str, account_sid: str, start, end) -> list[dict]:
    url = f"{fake_url}/2010-04-01/Accounts/{account_sid}/Usage/Records/Daily.json"
    params = {"StartDate": start.isoformat(), "EndDate": end.isoformat(), "PageSize": 1000}
    records: list[dict] = []
    with requests.Session() as session:
        session.auth = (MASTER_SID, MASTER_TOKEN)
        while url:
            page = session.get(url, params=params, timeout=30).json()
            records.extend(page["usage_records"])
            url, params = (fake_url + page["next_page_uri"]) if page["next_page_uri"] else "", {}
    return records


def _copy_out(connection, table: str) -> bytes:
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} TO STDOUT", buffer)
    return buffer.getvalue()


def _copy_into_tables(connection, payloads: dict[str, bytes]) -> float:
    """COPY into the real tables, in one transaction (as a store batch commits)."""
    from django.db import transaction

    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, payload in payloads.items():
            cursor.cursor.copy_expert(f"COPY {table} FROM STDIN", io.BytesIO(payload))
    return time.perf_counter() - began


def _copy_in_bare(connection, payload: bytes) -> float:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy (LIKE phone_usageline)")
        began = time.perf_counter()
        cursor.cursor.copy_expert("COPY bench_copy FROM STDIN", io.BytesIO(payload))
        seconds = time.perf_counter() - began
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def _create_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def _drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
