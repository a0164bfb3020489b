"""The cost rollup trigger reaches the usage lines of its new deltas by their ids only.

Its join to phone_usageline was planned once per connection, and with the table small or its statistics stale the
plan hashed the whole table for every statement, so each pull read every line the agency ever had.
`id = ANY(ids)` leaves the planner no way to visit a line no new delta names: the work is proportional to the new
deltas whatever the statistics say."""

from django.db import migrations

# The lines a statement's new deltas name, and no other (an index lookup whatever the cached plan).
LINES_OF_NEW_DELTAS = "l.id = ANY (ARRAY(SELECT line_id FROM new_deltas))"

FUNCTION = """
CREATE OR REPLACE FUNCTION creditusage_cost_rollup() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    -- Rows taken in key order, so two writers of one sub-account queue, never deadlock.
    WITH new AS MATERIALIZED (
        SELECT l.subaccount_id, l.day, l.product, sum(n.units_delta) AS units, sum(n.cost_delta) AS cost,
               count(*) AS deltas
          FROM new_deltas n JOIN phone_usageline l ON l.id = n.line_id
         WHERE %(lines)s
         GROUP BY 1, 2, 3
    ), by_day AS (
        INSERT INTO creditusage_usagecostrollup AS r (subaccount_id, day, product, units, cost, deltas)
        SELECT subaccount_id, day, product, units, cost, deltas FROM new ORDER BY 1, 2, 3
        ON CONFLICT (subaccount_id, day, product) DO UPDATE SET
            units = r.units + EXCLUDED.units, cost = r.cost + EXCLUDED.cost, deltas = r.deltas + EXCLUDED.deltas
    )
    INSERT INTO creditusage_usagecostmonthrollup AS m (subaccount_id, month, product, units, cost, deltas)
    SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(deltas)
      FROM new GROUP BY 1, 2, 3 ORDER BY 2, 1, 3
    ON CONFLICT (month, subaccount_id, product) DO UPDATE SET
        units = m.units + EXCLUDED.units, cost = m.cost + EXCLUDED.cost, deltas = m.deltas + EXCLUDED.deltas;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("creditusage", "0007_spend_alert_resume"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION % {"lines": LINES_OF_NEW_DELTAS}, FUNCTION % {"lines": "true"}),
    ]
