"""Rollups that make any date range of the rebilling dashboard cheap: the agency-wide provider cost per day and
product, and per-sub-account totals over aligned spans of a month's days (see models.SPAN_DAYS). The provider-cost
ones are kept by the usage deltas' statement trigger of migration 0006, whose function is replaced here: still one
statement per insert into phone_usagedelta, with work proportional to the new deltas (it reaches their lines by id,
as 0008 made it)."""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

_previous = import_module("creditusage.migrations.0008_cost_rollup_reaches_lines_by_their_ids")


# The day's span of each length: the month's first day + the day-of-month offset rounded down to a multiple of it.
SPANS = """
    CROSS JOIN unnest(ARRAY[1, 2, 4, 8, 16, 32]) AS s(days)
"""
SPAN_START = "(date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / s.days * s.days)"

COST_ROLLUP_FUNCTION = f"""
CREATE OR REPLACE FUNCTION creditusage_cost_rollup() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    -- Rows taken in key order, so two writers of one sub-account queue, never deadlock.
    WITH new AS MATERIALIZED (
        SELECT l.subaccount_id, l.day, l.product, sum(n.units_delta) AS units, sum(n.cost_delta) AS cost,
               count(*) AS deltas
          FROM new_deltas n JOIN phone_usageline l ON l.id = n.line_id
         WHERE {_previous.LINES_OF_NEW_DELTAS}
         GROUP BY 1, 2, 3
    ), by_day AS (
        INSERT INTO creditusage_usagecostrollup AS r (subaccount_id, day, product, units, cost, deltas)
        SELECT subaccount_id, day, product, units, cost, deltas FROM new ORDER BY 1, 2, 3
        ON CONFLICT (subaccount_id, day, product) DO UPDATE SET
            units = r.units + EXCLUDED.units, cost = r.cost + EXCLUDED.cost, deltas = r.deltas + EXCLUDED.deltas
    ), by_month AS (
        INSERT INTO creditusage_usagecostmonthrollup AS m (subaccount_id, month, product, units, cost, deltas)
        SELECT subaccount_id, date_trunc('month', day)::date, product, sum(units), sum(cost), sum(deltas)
          FROM new GROUP BY 1, 2, 3 ORDER BY 2, 1, 3
        ON CONFLICT (month, subaccount_id, product) DO UPDATE SET
            units = m.units + EXCLUDED.units, cost = m.cost + EXCLUDED.cost, deltas = m.deltas + EXCLUDED.deltas
    ), by_span AS (
        INSERT INTO creditusage_subaccountcostspantotal AS t (span_days, span_start, subaccount_id, cost)
        SELECT s.days, {SPAN_START}, subaccount_id, sum(cost) FROM new {SPANS} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (span_days, span_start, subaccount_id) DO UPDATE SET cost = t.cost + EXCLUDED.cost
    )
    -- Shared by every sub-account of the agency: taken in (day, product) order too.
    INSERT INTO creditusage_agencycostdayrollup AS a (day, product, units, cost, deltas)
    SELECT day, product, sum(units), sum(cost), sum(deltas) FROM new GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (day, product) DO UPDATE SET
        units = a.units + EXCLUDED.units, cost = a.cost + EXCLUDED.cost, deltas = a.deltas + EXCLUDED.deltas;
    RETURN NULL;
END $$;
"""

FORWARD = COST_ROLLUP_FUNCTION + f"""
-- What was rolled up before these rollups existed.
INSERT INTO creditusage_agencycostdayrollup (day, product, units, cost, deltas)
SELECT day, product, sum(units), sum(cost), sum(deltas) FROM creditusage_usagecostrollup GROUP BY 1, 2;
INSERT INTO creditusage_subaccountcostspantotal (span_days, span_start, subaccount_id, cost)
SELECT s.days, {SPAN_START}, subaccount_id, sum(cost) FROM creditusage_usagecostrollup {SPANS} GROUP BY 1, 2, 3;
INSERT INTO creditusage_subaccountspantotal (span_days, span_start, subaccount_id, revenue, cost)
SELECT s.days, {SPAN_START}, subaccount_id, sum(revenue), sum(cost) FROM creditusage_usagerollup {SPANS}
 GROUP BY 1, 2, 3;
"""

# Migration 0008's function, as it was.
BACKWARD = _previous.FUNCTION % {"lines": _previous.LINES_OF_NEW_DELTAS}


class Migration(migrations.Migration):

    dependencies = [
        ('creditusage', '0008_cost_rollup_reaches_lines_by_their_ids'),
        ('subaccounts', '0005_audit_usage_details_actions'),
    ]

    operations = [
        migrations.CreateModel(
            name='AgencyCostDayRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('product', models.CharField(choices=[('sms', 'SMS'), ('mms', 'MMS'), ('calls', 'Calls'), ('phone_numbers', 'Phone numbers'), ('other', 'Other carrier fees')], max_length=20)),
                ('units', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('deltas', models.PositiveIntegerField(default=0)),
            ],
            options={
                'ordering': ['day', 'product'],
                'constraints': [models.UniqueConstraint(fields=('day', 'product'), name='one_agency_cost_day_rollup')],
            },
        ),
        migrations.CreateModel(
            name='SubAccountCostSpanTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('span_start', models.DateField()),
                ('span_days', models.PositiveSmallIntegerField()),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('subaccount', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount')),
            ],
            options={
                'ordering': ['span_days', 'span_start', 'subaccount'],
                'constraints': [models.UniqueConstraint(fields=('span_days', 'span_start', 'subaccount'), include=('cost',), name='one_cost_span_total')],
            },
        ),
        migrations.CreateModel(
            name='SubAccountSpanTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('span_start', models.DateField()),
                ('span_days', models.PositiveSmallIntegerField()),
                ('revenue', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('subaccount', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount')),
            ],
            options={
                'ordering': ['span_days', 'span_start', 'subaccount'],
                'constraints': [models.UniqueConstraint(fields=('span_days', 'span_start', 'subaccount'), include=('revenue', 'cost'), name='one_span_total')],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
