-- The per-statement balance check of 003, from the statement's own rows. 003 summed every
-- entry of each transaction the statement touched, joining `added` back to `entries`: the
-- planner chose a sequential scan of all of `entries` for that join, so each bulk insert
-- read the whole ledger, and its cost grew with the ledger's size.
--
-- Summing only the rows of the statement is enough to park every transaction that may be
-- off balance: a transaction's entries are the sum of what each statement added, so if
-- they do not balance in some currency at commit, some statement since the last check
-- added entries that do not balance in that currency, and that statement parked it. The
-- deferred `entries_balanced` check of 003 (unchanged) then sums all of the parked
-- transaction's entries and refuses the commit. A posting inserted in one statement, as
-- every posting of the service is, still parks nothing when it balances.
CREATE OR REPLACE FUNCTION ledger_park_unbalanced() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO ledger_unbalanced (transaction_id)
    SELECT DISTINCT off.transaction_id
    FROM (
        SELECT transaction_id
        FROM added
        GROUP BY transaction_id, currency
        HAVING sum(amount_minor) <> 0
    ) off
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
