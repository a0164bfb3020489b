"""pg_trgm, once per database, in the public schema: every agency schema has public on its search path, so each one's
trigram indexes (rebilling 0005) find its operator classes there. A shared app creates it so that the extension
exists before any agency schema migrates (the deploy migrates the shared apps first) and so that schemas migrated in
parallel never race to create it."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("agencies", "0003_agency_usage_pull_due_at"),
    ]

    operations = [
        # Left in place on the way back: agency schemas' indexes may still use it.
        migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public", migrations.RunSQL.noop),
    ]
