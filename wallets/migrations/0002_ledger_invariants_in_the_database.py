"""balance == Σ entries, held by PostgreSQL whatever code writes:

- entries are insert-only (UPDATE and DELETE refused; TRUNCATE stays for test clean-up);
- each new entry continues its wallet's chain: seq = previous seq + 1 and balance_after = previous balance_after
  + amount (so the latest balance_after is the sum of every amount);
- a wallet's balance may only change to its latest entry's balance_after (entries first, then the balance, in
  the same transaction).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION wallet_entry_chain() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    broken record;
BEGIN
    -- One set-based check per statement (a rating run inserts thousands of entries in one statement).
    SELECT n.wallet_id, n.seq, n.amount, n.balance_after, p.seq AS previous_seq, p.balance_after AS previous_balance
      INTO broken
      FROM new_entries n
      LEFT JOIN LATERAL (SELECT e.seq, e.balance_after FROM wallets_walletentry e
                          WHERE e.wallet_id = n.wallet_id AND e.seq < n.seq ORDER BY e.seq DESC LIMIT 1) p ON true
     WHERE n.seq <> COALESCE(p.seq, 0) + 1 OR n.balance_after <> COALESCE(p.balance_after, 0) + n.amount
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'wallet % ledger chain broken at seq % (previous seq %, balance %; amount %, balance_after %)',
            broken.wallet_id, broken.seq, broken.previous_seq, broken.previous_balance, broken.amount,
            broken.balance_after USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wallet_entry_chain AFTER INSERT ON wallets_walletentry
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION wallet_entry_chain();

CREATE FUNCTION wallet_entry_insert_only() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION 'wallet entries are insert-only: correct with a new entry' USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER wallet_entry_insert_only BEFORE UPDATE OR DELETE ON wallets_walletentry
    FOR EACH ROW EXECUTE FUNCTION wallet_entry_insert_only();

CREATE FUNCTION wallet_balance_is_ledger() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    ledger numeric(18, 6);
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.balance = OLD.balance THEN
        RETURN NEW;
    END IF;
    SELECT balance_after INTO ledger FROM wallets_walletentry WHERE wallet_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF NEW.balance <> COALESCE(ledger, 0) THEN
        RAISE EXCEPTION 'wallet % balance % differs from its ledger %', NEW.id, NEW.balance, COALESCE(ledger, 0)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER wallet_balance_is_ledger BEFORE INSERT OR UPDATE OF balance ON wallets_wallet
    FOR EACH ROW EXECUTE FUNCTION wallet_balance_is_ledger();
"""

BACKWARD = """
DROP TRIGGER wallet_balance_is_ledger ON wallets_wallet;
DROP FUNCTION wallet_balance_is_ledger();
DROP TRIGGER wallet_entry_insert_only ON wallets_walletentry;
DROP FUNCTION wallet_entry_insert_only();
DROP TRIGGER wallet_entry_chain ON wallets_walletentry;
DROP FUNCTION wallet_entry_chain();
"""


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
