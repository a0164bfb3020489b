"""Every LC Phone usage delta written in this agency schema is queued, in the same transaction, for the agency's
wallet with the platform (public.agency_wallets_usagetobill): billing then never visits agency schemas."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION agency_wallet_feed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO public.agency_wallets_usagetobill
        (schema_name, usage_delta_id, units_delta, cost_delta, currency, category, day, queued_at)
    SELECT TG_TABLE_SCHEMA, n.id, n.units_delta, n.cost_delta, n.currency, l.category, l.day, now()
      FROM new_deltas n JOIN phone_usageline l ON l.id = n.line_id
     WHERE l.provider = 'lc_phone';
    RETURN NULL;
END $$;

CREATE TRIGGER agency_wallet_feed AFTER INSERT ON phone_usagedelta
    REFERENCING NEW TABLE AS new_deltas FOR EACH STATEMENT EXECUTE FUNCTION agency_wallet_feed();
"""

BACKWARD = """
DROP TRIGGER agency_wallet_feed ON phone_usagedelta;
DROP FUNCTION agency_wallet_feed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0003_ledger_triggers_use_the_chain_index"),
        ("phone", "0006_provider_changes_move_to_audit_log"),
        ("agency_wallets", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
