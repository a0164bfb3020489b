"""The agency's cost of every sub-account's usage (rebilled or not), rolled up per (sub-account, day, product) and
per month by a statement-level trigger on phone_usagedelta: in the transaction that writes the deltas, whichever
writer inserts them (one upsert per sub-account or per batch), with work proportional to the new deltas. The
dashboard reads these, never the deltas."""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE FUNCTION creditusage_cost_rollup() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    -- Rows taken in key order, so two writers of one sub-account queue, never deadlock.
    WITH new AS MATERIALIZED (
        SELECT l.subaccount_id, l.day, l.product, sum(n.units_delta) AS units, sum(n.cost_delta) AS cost,
               count(*) AS deltas
          FROM new_deltas n JOIN phone_usageline l ON l.id = n.line_id
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

CREATE TRIGGER creditusage_cost_rollup AFTER INSERT ON phone_usagedelta
    REFERENCING NEW TABLE AS new_deltas FOR EACH STATEMENT EXECUTE FUNCTION creditusage_cost_rollup();

-- Deltas written before the rollups existed.
INSERT INTO creditusage_usagecostrollup (subaccount_id, day, product, units, cost, deltas)
SELECT l.subaccount_id, l.day, l.product, sum(d.units_delta), sum(d.cost_delta), count(*)
  FROM phone_usagedelta d JOIN phone_usageline l ON l.id = d.line_id GROUP BY 1, 2, 3;
INSERT INTO creditusage_usagecostmonthrollup (subaccount_id, month, product, units, cost, deltas)
SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(deltas)
  FROM creditusage_usagecostrollup GROUP BY 1, 2, 3;
"""

BACKWARD = """
DROP TRIGGER creditusage_cost_rollup ON phone_usagedelta;
DROP FUNCTION creditusage_cost_rollup();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('creditusage', '0005_details_sharing'),
        ('subaccounts', '0004_provider_changes_join_the_audit_log'),
        ('phone', '0006_provider_changes_move_to_audit_log'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageCostMonthRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField()),
                ('product', models.CharField(choices=[('sms', 'SMS'), ('mms', 'MMS'), ('calls', 'Calls'), ('phone_numbers', 'Phone numbers'), ('other', 'Other carrier fees')], max_length=20)),
                ('units', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('deltas', models.PositiveIntegerField(default=0)),
                ('subaccount', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount')),
            ],
            options={
                'ordering': ['month', 'subaccount', 'product'],
                'constraints': [models.UniqueConstraint(fields=('month', 'subaccount', 'product'), name='one_cost_month_rollup')],
            },
        ),
        migrations.CreateModel(
            name='UsageCostRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('product', models.CharField(choices=[('sms', 'SMS'), ('mms', 'MMS'), ('calls', 'Calls'), ('phone_numbers', 'Phone numbers'), ('other', 'Other carrier fees')], max_length=20)),
                ('units', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('deltas', models.PositiveIntegerField(default=0)),
                ('subaccount', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount')),
            ],
            options={
                'ordering': ['day', 'subaccount', 'product'],
                'indexes': [models.Index(fields=['day', 'subaccount'], name='cost_rollups_by_day')],
                'constraints': [models.UniqueConstraint(fields=('subaccount', 'day', 'product'), name='one_cost_rollup')],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
