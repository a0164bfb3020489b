"""The agency ledger's invariants, held by PostgreSQL as the client ledger's are (wallets migration 0002, 0003):
entries insert-only and chained (seq + 1, balance_after = previous + amount), and a wallet's balance only ever its
latest entry's balance_after. The lookups are pinned to the (wallet_id, seq) index (see wallets 0003 for why)."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION agency_wallet_entry_chain() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
DECLARE
    broken record;
BEGIN
    -- One set-based check per statement (a billing run inserts thousands of entries in one statement).
    SELECT n.wallet_id, n.seq, n.amount, n.balance_after, p.seq AS previous_seq, p.balance_after AS previous_balance
      INTO broken
      FROM new_entries n
      LEFT JOIN LATERAL (SELECT e.seq, e.balance_after FROM agency_wallets_agencywalletentry e
                          WHERE e.wallet_id = n.wallet_id AND e.seq < n.seq ORDER BY e.seq DESC LIMIT 1) p ON true
     WHERE n.seq <> COALESCE(p.seq, 0) + 1 OR n.balance_after <> COALESCE(p.balance_after, 0) + n.amount
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION
            'agency wallet % ledger chain broken at seq % (previous seq %, balance %; amount %, balance_after %)',
            broken.wallet_id, broken.seq, broken.previous_seq, broken.previous_balance, broken.amount,
            broken.balance_after USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER agency_wallet_entry_chain AFTER INSERT ON agency_wallets_agencywalletentry
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION agency_wallet_entry_chain();

CREATE FUNCTION agency_wallet_entry_insert_only() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION 'agency wallet entries are insert-only: correct with a new entry'
        USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER agency_wallet_entry_insert_only BEFORE UPDATE OR DELETE ON agency_wallets_agencywalletentry
    FOR EACH ROW EXECUTE FUNCTION agency_wallet_entry_insert_only();

CREATE FUNCTION agency_wallet_balance_is_ledger() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT SET enable_seqscan = off AS $$
DECLARE
    ledger numeric(18, 6);
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.balance = OLD.balance THEN
        RETURN NEW;
    END IF;
    SELECT balance_after INTO ledger FROM agency_wallets_agencywalletentry WHERE wallet_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF NEW.balance <> COALESCE(ledger, 0) THEN
        RAISE EXCEPTION 'agency wallet % balance % differs from its ledger %', NEW.id, NEW.balance,
            COALESCE(ledger, 0)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER agency_wallet_balance_is_ledger BEFORE INSERT OR UPDATE OF balance ON agency_wallets_agencywallet
    FOR EACH ROW EXECUTE FUNCTION agency_wallet_balance_is_ledger();
"""

BACKWARD = """
DROP TRIGGER agency_wallet_balance_is_ledger ON agency_wallets_agencywallet;
DROP FUNCTION agency_wallet_balance_is_ledger();
DROP TRIGGER agency_wallet_entry_insert_only ON agency_wallets_agencywalletentry;
DROP FUNCTION agency_wallet_entry_insert_only();
DROP TRIGGER agency_wallet_entry_chain ON agency_wallets_agencywalletentry;
DROP FUNCTION agency_wallet_entry_chain();
"""


class Migration(migrations.Migration):
    dependencies = [("agency_wallets", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
