"""Seed the LC Phone price book with the US prices in force when it was created (issue 4)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

SEEDED_FROM = datetime(2026, 1, 1, tzinfo=UTC)

# (category, unit, USD per unit). Categories left out (short-code SMS, mobile numbers, carrier fees)
# pass through at Twilio's own price until platform staff add a row for them.
US_PRICES = [
    ("phonenumbers-local", "number per month", "1.15"),
    ("phonenumbers-tollfree", "number per month", "2.15"),
    ("sms-inbound-longcode", "segment", "0.0083"),
    ("sms-outbound-longcode", "segment", "0.0083"),
    ("sms-inbound-tollfree", "segment", "0.0083"),
    ("sms-outbound-tollfree", "segment", "0.0083"),
    ("mms-outbound", "message", "0.0220"),
    ("mms-inbound", "message", "0.0165"),
    ("calls-outbound", "minute", "0.0166"),
    ("calls-inbound-local", "minute", "0.0117"),
    ("calls-inbound-tollfree", "minute", "0.0117"),
    ("calls-inbound-mobile", "minute", "0.0117"),
]


def seed(apps, schema_editor):
    LcPhonePrice = apps.get_model("pricebook", "LcPhonePrice")
    for category, unit, price in US_PRICES:
        LcPhonePrice.objects.get_or_create(
            category=category, effective_from=SEEDED_FROM, defaults={"unit": unit, "unit_price": Decimal(price)}
        )


def unseed(apps, schema_editor):
    LcPhonePrice = apps.get_model("pricebook", "LcPhonePrice")
    LcPhonePrice.objects.filter(effective_from=SEEDED_FROM, category__in=[c for c, _, _ in US_PRICES]).delete()


class Migration(migrations.Migration):
    dependencies = [("pricebook", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
