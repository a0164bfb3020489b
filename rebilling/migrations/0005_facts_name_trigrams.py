"""Phone Integration's search by name reads matches off a trigram index instead of scanning every name (pg_trgm is
created once, in the public schema, by agencies 0004)."""

import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('agencies', '0004_pg_trgm_in_public'),
        ('rebilling', '0004_switched_on_says_since_when'),
        ('subaccounts', '0005_audit_usage_details_actions'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='subaccountfacts',
            index=django.contrib.postgres.indexes.GinIndex(fields=['name'], name='facts_name_trigrams', opclasses=['gin_trgm_ops']),
        ),
    ]
