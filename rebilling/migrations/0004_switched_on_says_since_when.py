from django.db import migrations, models
from django.utils import timezone


def start_carried_over_switches_now(apps, schema_editor):
    """Switches carried over from billing.BillingProfile had no start: they bill usage fetched from the deploy on,
    never usage from before it (nothing was billed under the old flag)."""
    SubAccountRebilling = apps.get_model("rebilling", "SubAccountRebilling")
    SubAccountRebilling.objects.filter(switched_on=True, switched_on_at__isnull=True).update(
        switched_on_at=timezone.now(), switched_on_by="carried over from the billing profile")


class Migration(migrations.Migration):

    dependencies = [
        ("rebilling", "0003_subaccount_facts"),
    ]

    operations = [
        migrations.RunPython(start_carried_over_switches_now, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="subaccountrebilling",
            constraint=models.CheckConstraint(condition=models.Q(("switched_on", False), ("switched_on_at__isnull", False), _connector="OR"),
                                              name="switched_on_says_since_when"),
        ),
    ]
