from django.db import migrations


def copy_switch(apps, schema_editor):
    """The rebilling switch used to live on billing.BillingProfile: carry over every sub-account that had it on."""
    BillingProfile = apps.get_model("billing", "BillingProfile")
    SubAccountRebilling = apps.get_model("rebilling", "SubAccountRebilling")
    for subaccount_id in BillingProfile.objects.filter(rebilling_enabled=True).values_list("subaccount_id", flat=True):
        SubAccountRebilling.objects.update_or_create(subaccount_id=subaccount_id, defaults={"switched_on": True})


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0002_audit_moves_to_subaccount_log"),
        ("rebilling", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(copy_switch, migrations.RunPython.noop),
    ]
