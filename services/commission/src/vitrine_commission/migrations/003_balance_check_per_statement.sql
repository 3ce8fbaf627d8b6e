-- The balance check, set-based. The per-row deferred trigger of 001 ran one query per
-- entry at commit (four per sale): about a third of the ledger's database time. Now each
-- INSERT statement on entries checks the transactions it touched in one query. One still
-- off balance after the statement (its entries come in several statements) is parked in
-- `ledger_unbalanced`; the deferred constraint trigger `entries_balanced` checks it again
-- when the database transaction commits (or at SET CONSTRAINTS ... IMMEDIATE) and refuses
-- the commit if it still does not balance. A balanced posting parks nothing.
DROP TRIGGER entries_balanced ON entries;
DROP FUNCTION ledger_check_balanced();

-- Empty outside a database transaction: a parked id is removed when it checks out, and a
-- failed check aborts the transaction that parked it.
CREATE TABLE ledger_unbalanced (
    transaction_id uuid PRIMARY KEY
);

CREATE FUNCTION ledger_park_unbalanced() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO ledger_unbalanced (transaction_id)
    SELECT DISTINCT off.transaction_id
    FROM (
        SELECT e.transaction_id
        FROM entries e
        WHERE e.transaction_id IN (SELECT transaction_id FROM added)
        GROUP BY e.transaction_id, e.currency
        HAVING sum(e.amount_minor) <> 0
    ) off
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER entries_balanced_per_statement
    AFTER INSERT ON entries
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_park_unbalanced();

CREATE FUNCTION ledger_check_parked() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    off record;
BEGIN
    SELECT currency, sum(amount_minor) AS total INTO off
    FROM entries WHERE transaction_id = NEW.transaction_id
    GROUP BY currency HAVING sum(amount_minor) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % % off',
            NEW.transaction_id, off.total, off.currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_balanced';
    END IF;
    DELETE FROM ledger_unbalanced WHERE transaction_id = NEW.transaction_id;
    RETURN NULL;
END
$$;

-- Same name as 001's trigger, so SET CONSTRAINTS entries_balanced keeps its meaning.
CREATE CONSTRAINT TRIGGER entries_balanced
    AFTER INSERT ON ledger_unbalanced
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_parked();
