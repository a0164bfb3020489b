"""The feed trigger's join to phone_usageline is planned once per connection; planned on an empty table it kept
scanning the whole table for every pull (the pull slowed down as usage grew). Index lookups only, as in 0003."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("wallets", "0004_feed_the_agency_wallet"),
    ]

    operations = [
        migrations.RunSQL("ALTER FUNCTION agency_wallet_feed() SET enable_seqscan = off",
                          "ALTER FUNCTION agency_wallet_feed() RESET enable_seqscan"),
    ]
