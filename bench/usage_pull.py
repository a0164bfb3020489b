"""Benchmark of the usage pull: fake Twilio → parse → map → upsert, against plain PostgreSQL COPY.

    .venv/bin/python -m bench.usage_pull [--lines 200000] [--subaccounts 2000]

Creates its own scratch database (on the server of DATABASE_URL, default 127.0.0.1:5432), agency and
fake Twilio process, and removes all of them at the end. Prints rows/s for
  (a) the whole pull, HTTP included (the production service, one sub-account after another),
  (b) the store step alone (parse the raw records, map them to lines, upsert them and append their usage
      deltas), on the same raw records,
  (c) plain COPY of the same rows into a scratch table with the same columns and no index,
and the ratios store/COPY and pull/COPY.
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
        return _run(fake.url, days=days, subaccounts=args.subaccounts, bulk_generate=bulk_generate)
    finally:
        from django.db import connections

        connections.close_all()
        _drop_database(admin_url, scratch)
        fake.stop()


def _run(fake_url: str, *, days: int, subaccounts: int, bulk_generate) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from agencies.plans import PhoneProvider, Plan
    from agencies.services import agency_create
    from phone.models import SubAccountProvider, UsageDelta, UsageLine
    from phone.services import usage_lines_store, usage_pull
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

        # (a) the whole pull, as the per-sub-account task runs it
        began = time.perf_counter()
        for provider in providers:
            usage_pull(provider_id=provider.pk, start=start, end=end)
        pull_seconds = time.perf_counter() - began
        lines = UsageLine.objects.count()
        assert UsageDelta.objects.count() == lines, "the pull must append one delta per new line"

        # The same raw records again, kept in memory for (b); then start (b) from an empty table, as (a) did.
        raw_pages = {provider.pk: _raw_records(fake_url, provider.lc_phone_account_sid, start, end)
                     for provider in providers}
        copy_payload = _copy_out(connection)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE phone_usagedelta, phone_usageline CASCADE")  # and what rated them
            cursor.execute("UPDATE phone_subaccountprovider SET read_marks = '{}'")

        # (b) the store step alone: parse, map, upsert (one locked transaction per sub-account, as in a pull)
        fetched_at = timezone.now()
        timings = StatementTimings()
        parse_seconds = 0.0
        began = time.perf_counter()
        with connection.execute_wrapper(timings):
            for provider in providers:
                sid = provider.lc_phone_account_sid
                parse_began = time.perf_counter()
                records = [record for raw in raw_pages[provider.pk] if (record := parse_usage_record(raw, sid))]
                parse_seconds += time.perf_counter() - parse_began
                usage_lines_store(provider=provider, account_sid=sid, records=records, fetched_at=fetched_at)
        store_seconds = time.perf_counter() - began
        assert UsageLine.objects.count() == lines, "the store step must produce the lines the pull did"
        assert UsageDelta.objects.count() == lines, "the store step must append one delta per new line"

        # For reference: the same store again, nothing changed (what every 5-minute pull mostly sees)
        began = time.perf_counter()
        for provider in providers:
            sid = provider.lc_phone_account_sid
            records = [record for raw in raw_pages[provider.pk] if (record := parse_usage_record(raw, sid))]
            usage_lines_store(provider=provider, account_sid=sid, records=records, fetched_at=timezone.now())
        restore_seconds = time.perf_counter() - began
        assert set(UsageLine.objects.values_list("revision", flat=True)) == {1}
        assert UsageDelta.objects.count() == lines, "an unchanged line gets no delta"

        # (c) plain COPY of the same rows into a scratch table; for reference, into a copy of the real table
        copy_seconds = _copy_in(connection, copy_payload, like="")
        indexed_copy_seconds = _copy_in(connection, copy_payload, like=" INCLUDING ALL")

    pull_rate, store_rate, copy_rate = lines / pull_seconds, lines / store_seconds, lines / copy_seconds
    say("")
    say(f"{lines:,} usage lines ({subaccounts:,} sub-accounts x {days} days x {LEAVES_PER_DAY} categories),"
        f" each with its first usage delta, written by the same statement")
    say(f"(a) whole pull, HTTP included : {pull_rate:>10,.0f} rows/s  ({pull_seconds:.2f} s)")
    say(f"(b) store step alone          : {store_rate:>10,.0f} rows/s  ({store_seconds:.2f} s)")
    say(f"(c) plain COPY                : {copy_rate:>10,.0f} rows/s  ({copy_seconds:.2f} s)")
    say(f"store/COPY = {store_rate / copy_rate:.2f}   pull/COPY = {pull_rate / copy_rate:.2f}"
        "   (goal store/COPY >= 0.5)")
    say(f"    where (b) goes: parse {parse_seconds:.2f} s, lock {timings.seconds['lock']:.2f} s, "
        f"upsert statement {timings.seconds['upsert']:.2f} s, the rest (map, payload, transaction, commit) "
        f"{store_seconds - parse_seconds - timings.seconds['lock'] - timings.seconds['upsert']:.2f} s")
    say("For reference:")
    say(f"    store again, nothing changed : {lines / restore_seconds:>10,.0f} rows/s  ({restore_seconds:.2f} s)")
    indexed_rate = lines / indexed_copy_seconds
    say(f"    COPY into a copy of phone_usageline (its indexes, no FK): {indexed_rate:,.0f} rows/s"
        f"  -> store/that = {store_rate / indexed_rate:.2f}")
    return 0


class StatementTimings:
    """A Django execute wrapper: time spent in the lock and in the upsert statements."""

    def __init__(self) -> None:
        self.seconds = {"lock": 0.0, "upsert": 0.0, "other": 0.0}

    def __call__(self, execute, sql, params, many, context):
        kind = "lock" if "FOR UPDATE" in sql else "upsert" if "rebill_usage_upsert" in sql else "other"
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds[kind] += time.perf_counter() - began


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


def _copy_out(connection) -> bytes:
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert("COPY phone_usageline TO STDOUT", buffer)
    return buffer.getvalue()


def _copy_in(connection, payload: bytes, *, like: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_copy (LIKE phone_usageline{like})")
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
