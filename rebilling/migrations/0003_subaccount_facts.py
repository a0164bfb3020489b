"""One row of rebilling facts per sub-account (rebilling.SubAccountFacts), kept by triggers on every table they
come from, in the writing transaction itself: whatever writes a provider, a card, a membership, a user's
active flag, the switch or a name (services, bulk updates, the admin), the facts follow."""

import django.db.models.deletion
from django.db import migrations, models


# The facts of one sub-account, recomputed from its rows (the same reading as rebilling.selectors._facts_sql).
# Plans are cached per connection: planned on empty tables they would keep scanning whole tables once these grow
# (see wallets 0005), so index lookups only.
FORWARD = """
CREATE FUNCTION rebilling_facts_refresh(target bigint) RETURNS void LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    INSERT INTO rebilling_subaccountfacts
        (subaccount_id, name, provider, provider_status, has_account_admin, card_account_id, switched_on)
    SELECT s.id, s.name, coalesce(p.provider, ''), coalesce(p.status, ''),
           EXISTS (SELECT FROM subaccounts_membership m JOIN people_user u ON u.id = m.user_id
                   WHERE m.subaccount_id = s.id AND m.role = 'account_admin' AND u.is_active),
           coalesce(CASE WHEN b.card_payment_method_id <> '' THEN b.stripe_account_id END, ''),
           coalesce(r.switched_on, false)
      FROM subaccounts_subaccount s
      LEFT JOIN phone_subaccountprovider p ON p.subaccount_id = s.id
      LEFT JOIN billing_billingprofile b ON b.subaccount_id = s.id
      LEFT JOIN rebilling_subaccountrebilling r ON r.subaccount_id = s.id
     WHERE s.id = target
    ON CONFLICT (subaccount_id) DO UPDATE SET
        name = EXCLUDED.name, provider = EXCLUDED.provider, provider_status = EXCLUDED.provider_status,
        has_account_admin = EXCLUDED.has_account_admin, card_account_id = EXCLUDED.card_account_id,
        switched_on = EXCLUDED.switched_on;
END $$;

-- A row naming its sub-account (provider, billing profile, switch, membership): the old and the new one.
CREATE FUNCTION rebilling_facts_follow_row() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM rebilling_facts_refresh(OLD.subaccount_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.subaccount_id IS DISTINCT FROM OLD.subaccount_id) THEN
        PERFORM rebilling_facts_refresh(NEW.subaccount_id);
    END IF;
    RETURN NULL;
END $$;

-- The sub-account itself: its name; its facts leave before it does (they reference it).
CREATE FUNCTION rebilling_facts_follow_subaccount() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM rebilling_subaccountfacts WHERE subaccount_id = OLD.id;
        RETURN OLD;
    END IF;
    PERFORM rebilling_facts_refresh(NEW.id);
    RETURN NULL;
END $$;

-- A user switched off (or back on) stops (or starts) counting as an account admin everywhere they are one.
CREATE FUNCTION rebilling_facts_follow_user() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM rebilling_facts_refresh(m.subaccount_id) FROM subaccounts_membership m WHERE m.user_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER rebilling_facts_subaccount AFTER INSERT OR UPDATE OF name ON subaccounts_subaccount
    FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_subaccount();
CREATE TRIGGER rebilling_facts_subaccount_gone BEFORE DELETE ON subaccounts_subaccount
    FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_subaccount();
CREATE TRIGGER rebilling_facts_provider
    AFTER INSERT OR DELETE OR UPDATE OF subaccount_id, provider, status ON phone_subaccountprovider
    FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_row();
CREATE TRIGGER rebilling_facts_card
    AFTER INSERT OR DELETE OR UPDATE OF subaccount_id, stripe_account_id, card_payment_method_id
    ON billing_billingprofile FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_row();
CREATE TRIGGER rebilling_facts_switch
    AFTER INSERT OR DELETE OR UPDATE OF subaccount_id, switched_on ON rebilling_subaccountrebilling
    FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_row();
CREATE TRIGGER rebilling_facts_membership
    AFTER INSERT OR DELETE OR UPDATE OF subaccount_id, user_id, role ON subaccounts_membership
    FOR EACH ROW EXECUTE FUNCTION rebilling_facts_follow_row();
CREATE TRIGGER rebilling_facts_user AFTER UPDATE OF is_active ON people_user
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active) EXECUTE FUNCTION rebilling_facts_follow_user();

SELECT rebilling_facts_refresh(id) FROM subaccounts_subaccount;
"""

BACKWARD = """
DROP TRIGGER rebilling_facts_user ON people_user;
DROP TRIGGER rebilling_facts_membership ON subaccounts_membership;
DROP TRIGGER rebilling_facts_switch ON rebilling_subaccountrebilling;
DROP TRIGGER rebilling_facts_card ON billing_billingprofile;
DROP TRIGGER rebilling_facts_provider ON phone_subaccountprovider;
DROP TRIGGER rebilling_facts_subaccount_gone ON subaccounts_subaccount;
DROP TRIGGER rebilling_facts_subaccount ON subaccounts_subaccount;
DROP FUNCTION rebilling_facts_follow_user();
DROP FUNCTION rebilling_facts_follow_subaccount();
DROP FUNCTION rebilling_facts_follow_row();
DROP FUNCTION rebilling_facts_refresh(bigint);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('rebilling', '0002_switch_moves_from_billing_profile'),
        ('subaccounts', '0004_provider_changes_join_the_audit_log'),
        ('phone', '0006_provider_changes_move_to_audit_log'),
        ('billing', '0003_rebilling_switch_moves_to_rebilling'),
        ('people', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SubAccountFacts',
            fields=[
                ('subaccount', models.OneToOneField(on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='subaccounts.subaccount')),
                ('name', models.CharField(max_length=150)),
                ('provider', models.CharField(blank=True, max_length=20)),
                ('provider_status', models.CharField(blank=True, max_length=30)),
                ('has_account_admin', models.BooleanField()),
                ('card_account_id', models.CharField(blank=True, max_length=64)),
                ('switched_on', models.BooleanField()),
            ],
            options={
                'ordering': ['name', 'subaccount'],
                'indexes': [models.Index(fields=['name', 'subaccount'], name='facts_by_name')],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
