"""The statement triggers on usage deltas (the agency wallet feed, the provider cost rollups) read only the usage
lines their new deltas name, whatever plan the connection has cached for them: a pull costs what it writes, not
what the agency ever used. (A connection's first large catch-up used to leave a plan behind that hashed every
line of the agency for each later statement, so the pull slowed down as usage grew.)"""

from __future__ import annotations

import psycopg2
import pytest

from tests import conftest

LINES = 2_000

LINE_COLUMNS = ("subaccount_id, provider, account_sid, category, day, product, usage_unit, count, units, twilio_price, "
                "unit_price, cost, currency, billed_cost, revision, fetched_at, created_at, updated_at")
DELTA_COLUMNS = "line_id, revision, units_delta, unit_price, cost_delta, currency, fetched_at"


def lines_read(cursor) -> int:
    """Usage lines this transaction has read so far, by any scan."""
    cursor.execute("SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                   "WHERE relid = 'phone_usageline'::regclass")
    return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_statement_of_one_delta_reads_one_line_after_a_catch_up_of_thousands_on_the_same_connection(world):
    agency, subaccount = world.a.agency, world.a.subaccounts[0]
    conn = psycopg2.connect(conftest.test_database_url())  # a fresh connection: no trigger plan cached yet
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET search_path TO %s, public", [agency.schema_name])
            cursor.execute(f"""
                INSERT INTO phone_usageline ({LINE_COLUMNS})
                SELECT %s, 'lc_phone', 'AC00000000000000000000000000000001', 'sms-outbound',
                       date '2020-01-01' + n, 'sms', 'segments', 1, 1, 0.0079, 0.0079, 0.0079, 'usd', 0, 1,
                       now(), now(), now()
                  FROM generate_series(1, %s) AS n RETURNING id""", [subaccount.pk, LINES])  # noqa: S608
            first_line = min(row[0] for row in cursor.fetchall())
            # Statistics as autovacuum leaves them after such a load (else the planner's view of the table depends
            # on when autovacuum last visited it in this run, and a table it believes tiny is read whole).
            cursor.execute("ANALYZE phone_usageline")
            # The connection's first deltas: one for every line, the shape of a new agency's first catch-up.
            cursor.execute(f"""INSERT INTO phone_usagedelta ({DELTA_COLUMNS})
                               SELECT id, 1, 1, 0.0079, 0.0079, 'usd', now() FROM phone_usageline
                                WHERE subaccount_id = %s""", [subaccount.pk])  # noqa: S608
            before = lines_read(cursor)

            cursor.execute(f"INSERT INTO phone_usagedelta ({DELTA_COLUMNS}) "  # noqa: S608
                           "VALUES (%s, 2, 1, 0.0079, 0.0079, 'usd', now())", [first_line])

            # Two triggers look the line up, the foreign key checks it: a handful of reads, not thousands.
            assert lines_read(cursor) - before <= 5
            cursor.execute("SELECT count(*) FROM public.agency_wallets_usagetobill WHERE usage_delta_id IN "
                           "(SELECT id FROM phone_usagedelta WHERE line_id = %s)", [first_line])
            assert cursor.fetchone()[0] == 2  # and both deltas of the line were still fed to the agency wallet
    finally:
        conn.rollback()
        conn.close()
