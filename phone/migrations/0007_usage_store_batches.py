import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('phone', '0006_provider_changes_move_to_audit_log'),
        ('subaccounts', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='subaccountprovider',
            name='read_digests',
            field=models.JSONField(blank=True, default=dict),
        ),
        # The foreign keys' own indexes repeat the first column of the unique keys.
        migrations.AlterField(
            model_name='usageline',
            name='subaccount',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='usage_lines', to='subaccounts.subaccount'),
        ),
        migrations.AlterField(
            model_name='usagedelta',
            name='line',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='deltas', to='phone.usageline'),
        ),
    ]
