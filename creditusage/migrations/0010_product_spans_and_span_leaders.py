"""Span totals per product, so a dashboard filtered by product reads a few rows per sub-account as the unfiltered one
does, and each span's sub-accounts by revenue (the index the top sub-accounts are found from). The product cost
spans are kept by the usage deltas' statement trigger, whose function (migration 0009's) gains one rollup here."""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

_previous = import_module("creditusage.migrations.0009_range_rollups")
SPANS, SPAN_START = _previous.SPANS, _previous.SPAN_START

_AGENCY_ROLLUP = "\n    )\n    -- Shared by every sub-account of the agency"
COST_ROLLUP_FUNCTION = _previous.COST_ROLLUP_FUNCTION.replace(_AGENCY_ROLLUP, f"""
    ), by_product_span AS (
        INSERT INTO creditusage_subaccountproductcostspantotal AS t
            (span_days, span_start, product, subaccount_id, cost)
        SELECT s.days, {SPAN_START}, product, subaccount_id, sum(cost) FROM new {SPANS}
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (span_days, span_start, product, subaccount_id) DO UPDATE SET cost = t.cost + EXCLUDED.cost
    )
    -- Shared by every sub-account of the agency""", 1)
assert COST_ROLLUP_FUNCTION != _previous.COST_ROLLUP_FUNCTION

FORWARD = COST_ROLLUP_FUNCTION + f"""
-- What was rolled up before these rollups existed.
INSERT INTO creditusage_subaccountproductcostspantotal (span_days, span_start, product, subaccount_id, cost)
SELECT s.days, {SPAN_START}, product, subaccount_id, sum(cost) FROM creditusage_usagecostrollup {SPANS}
 GROUP BY 1, 2, 3, 4;
INSERT INTO creditusage_subaccountproductspantotal (span_days, span_start, product, subaccount_id, revenue, cost)
SELECT s.days, {SPAN_START}, product, subaccount_id, sum(revenue), sum(cost) FROM creditusage_usagerollup {SPANS}
 GROUP BY 1, 2, 3, 4;
"""

BACKWARD = _previous.COST_ROLLUP_FUNCTION


class Migration(migrations.Migration):

    dependencies = [
        ('creditusage', '0009_range_rollups'),
        ('subaccounts', '0005_audit_usage_details_actions'),
    ]

    operations = [
        migrations.CreateModel(
            name='SubAccountProductCostSpanTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('product', models.CharField(choices=[('sms', 'SMS'), ('mms', 'MMS'), ('calls', 'Calls'), ('phone_numbers', 'Phone numbers'), ('other', 'Other carrier fees')], max_length=20)),
                ('span_start', models.DateField()),
                ('span_days', models.PositiveSmallIntegerField()),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
            ],
            options={
                'ordering': ['span_days', 'span_start', 'product', 'subaccount'],
            },
        ),
        migrations.CreateModel(
            name='SubAccountProductSpanTotal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('product', models.CharField(choices=[('sms', 'SMS'), ('mms', 'MMS'), ('calls', 'Calls'), ('phone_numbers', 'Phone numbers'), ('other', 'Other carrier fees')], max_length=20)),
                ('span_start', models.DateField()),
                ('span_days', models.PositiveSmallIntegerField()),
                ('revenue', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
                ('cost', models.DecimalField(decimal_places=6, default=0, max_digits=18)),
            ],
            options={
                'ordering': ['span_days', 'span_start', 'product', 'subaccount'],
            },
        ),
        migrations.AddIndex(
            model_name='subaccountspantotal',
            index=models.Index(fields=['span_days', 'span_start', '-revenue'], include=('subaccount',), name='span_top_revenue'),
        ),
        migrations.AddField(
            model_name='subaccountproductcostspantotal',
            name='subaccount',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount'),
        ),
        migrations.AddField(
            model_name='subaccountproductspantotal',
            name='subaccount',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='subaccounts.subaccount'),
        ),
        migrations.AddConstraint(
            model_name='subaccountproductcostspantotal',
            constraint=models.UniqueConstraint(fields=('span_days', 'span_start', 'product', 'subaccount'), include=('cost',), name='one_product_cost_span_total'),
        ),
        migrations.AddIndex(
            model_name='subaccountproductspantotal',
            index=models.Index(fields=['span_days', 'span_start', 'product', '-revenue'], include=('subaccount',), name='product_span_top_revenue'),
        ),
        migrations.AddConstraint(
            model_name='subaccountproductspantotal',
            constraint=models.UniqueConstraint(fields=('span_days', 'span_start', 'product', 'subaccount'), include=('revenue', 'cost'), name='one_product_span_total'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
