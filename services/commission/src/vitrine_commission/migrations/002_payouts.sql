-- Payouts: a run per period moves what the platform owes each seller and creator (their
-- payable's credit balance, held for refunds) to a payout record, as a balanced ledger
-- transaction: debit the payee's payable, credit the platform's payouts_clearing (money
-- on its way to the payee's bank; a settlement posting moves it out of cash when the
-- payment provider confirms).

ALTER TABLE accounts DROP CONSTRAINT accounts_owner_kind;
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_kind CHECK (
    (owner_type = 'platform'
        AND kind IN ('cash', 'fee_revenue', 'first_party_revenue', 'payouts_clearing'))
    OR (owner_type IN ('seller', 'creator') AND kind = 'payable')
);

-- A payout is a ledger transaction of its own kind: no order, no refund, no event. Its
-- shares hold the amount in the payee's column (seller proceeds or creator commission),
-- so amount = sum of shares still holds for every transaction.
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('sale', 'refund', 'payout'));
ALTER TABLE transactions DROP CONSTRAINT transactions_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_refund_id_only_on_refunds
    CHECK ((kind = 'refund') = (refund_id IS NOT NULL));
ALTER TABLE transactions ALTER COLUMN order_id DROP NOT NULL;
ALTER TABLE transactions ADD CONSTRAINT transactions_order_id_unless_payout
    CHECK ((kind = 'payout') = (order_id IS NULL));
ALTER TABLE transactions ALTER COLUMN event_id DROP NOT NULL;
ALTER TABLE transactions ADD CONSTRAINT transactions_event_id_unless_payout
    CHECK ((kind = 'payout') = (event_id IS NULL));
ALTER TABLE transactions ADD CONSTRAINT transactions_payout_pays_one_party
    CHECK (kind <> 'payout' OR platform_fee_minor = 0
        AND (seller_proceeds_minor = 0 OR creator_commission_minor = 0));

-- One run per period: running a period again returns the first run.
CREATE TABLE payout_runs (
    id            uuid PRIMARY KEY,
    period        text NOT NULL UNIQUE CHECK (period ~ '^[0-9A-Za-z][0-9A-Za-z._:-]{0,63}$'),
    as_of         timestamptz NOT NULL,
    -- credits (earnings) booked up to the cutoff count; debits (claw-backs, earlier
    -- payouts) count whenever booked, so a refund inside the hold is never paid out
    cutoff        timestamptz NOT NULL,
    hold_seconds  double precision NOT NULL CHECK (hold_seconds >= 0),
    minimums      jsonb NOT NULL,  -- {"EUR": 1000, ...}: least payout, minor units
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (cutoff <= as_of)
);

CREATE TABLE payouts (
    seq             bigserial UNIQUE,  -- paging cursor
    id              uuid PRIMARY KEY,
    run_id          uuid NOT NULL REFERENCES payout_runs (id),
    period          text NOT NULL,
    account_id      bigint NOT NULL,
    owner_type      text NOT NULL CHECK (owner_type IN ('seller', 'creator')),
    owner_id        text NOT NULL,
    currency        text NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    transaction_id  uuid NOT NULL UNIQUE REFERENCES transactions (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- idempotent per period: one payout per account and period, whatever retries
    UNIQUE (account_id, period),
    FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency)
);
CREATE INDEX payouts_by_owner ON payouts (owner_id, seq);

CREATE TRIGGER payout_runs_append_only BEFORE UPDATE OR DELETE ON payout_runs
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER payouts_append_only BEFORE UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
