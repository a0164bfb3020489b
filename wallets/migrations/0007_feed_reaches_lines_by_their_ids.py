"""The feed trigger reaches the usage lines of its new deltas by their ids only.

Its join to phone_usageline was planned once per connection, and with the table small or its statistics stale the
plan hashed the whole table for every statement: each pull read every line the agency ever had (0005's
enable_seqscan = off only turned that into a full index scan). `id = ANY(ids)` leaves the planner no way to
visit a line no new delta names, so the work is proportional to the new deltas whatever the statistics say."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION agency_wallet_feed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    INSERT INTO public.agency_wallets_usagetobill
        (schema_name, usage_delta_id, units_delta, cost_delta, currency, category, day, queued_at)
    SELECT TG_TABLE_SCHEMA, n.id, n.units_delta, n.cost_delta, n.currency, l.category, l.day, now()
      FROM new_deltas n JOIN phone_usageline l ON l.id = n.line_id
     WHERE %(lines)s AND l.provider = 'lc_phone';
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0006_refunds"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION % {"lines": "l.id = ANY (ARRAY(SELECT line_id FROM new_deltas))"},
                          FUNCTION % {"lines": "true"}),
    ]
