"""The ledger triggers' lookups always go through the (wallet_id, seq) index.

PL/pgSQL caches a trigger's query plans for the whole session. Planned while the ledger was small (a new agency,
or right after a big rating run before autovacuum's ANALYZE), they stayed sequential scans while the table grew:
each balance update then read the whole ledger (a rating run over 1,000 wallets of 100 entries spent ~30 s
there). Turning sequential scans off inside these two functions leaves the planner only the index.
"""

from django.db import migrations

FORWARD = """
ALTER FUNCTION wallet_entry_chain() SET enable_seqscan = off;
ALTER FUNCTION wallet_balance_is_ledger() SET enable_seqscan = off;
"""

BACKWARD = """
ALTER FUNCTION wallet_entry_chain() RESET enable_seqscan;
ALTER FUNCTION wallet_balance_is_ledger() RESET enable_seqscan;
"""


class Migration(migrations.Migration):
    dependencies = [("wallets", "0002_ledger_invariants_in_the_database")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
