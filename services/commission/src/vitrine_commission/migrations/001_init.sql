-- The commission ledger: double entry, exact integer minor units, append-only.
-- Runs with search_path set to the service's schema; functions pin that search_path so a
-- session with another search_path (an operator's psql) still checks the right tables.

-- Accounts, named by owner, kind and currency; balances are derived from entries.
CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    owner_type  text NOT NULL,
    owner_id    text NOT NULL CHECK (owner_id <> ''),
    kind        text NOT NULL,
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_type, owner_id, kind, currency),
    -- target of the entries' (account_id, currency) foreign key
    UNIQUE (id, currency),
    -- mirrors domain.accounts.ALLOWED_KINDS
    CONSTRAINT accounts_owner_kind CHECK (
        (owner_type = 'platform' AND kind IN ('cash', 'fee_revenue', 'first_party_revenue'))
        OR (owner_type IN ('seller', 'creator') AND kind = 'payable')
    )
);

-- One ledger transaction per sale and per refund of an order. The parts record the
-- split (a sale: what each party accrued; a refund: what each gave back), so a refund can
-- prorate against the sale and statements can show the split without re-deriving it.
CREATE TABLE transactions (
    id                  uuid PRIMARY KEY,
    order_id            text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('sale', 'refund')),
    refund_id           text,
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor        bigint NOT NULL CHECK (amount_minor >= 0),
    seller_proceeds_minor     bigint NOT NULL,
    creator_commission_minor  bigint NOT NULL CHECK (creator_commission_minor >= 0),
    platform_fee_minor        bigint NOT NULL CHECK (platform_fee_minor >= 0),
    event_id            uuid NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'sale') = (refund_id IS NULL)),
    CHECK (amount_minor = seller_proceeds_minor + creator_commission_minor + platform_fee_minor),
    -- a sale never leaves the seller owing; one refund's seller part may be -1 when the
    -- commission and fee floors both step up by a unit (see domain.rules.reverse_refund)
    CHECK (kind = 'refund' OR seller_proceeds_minor >= 0),
    CHECK (kind = 'sale' OR amount_minor > 0),
    UNIQUE (order_id, kind, refund_id)
);
-- UNIQUE treats NULL refund ids as distinct, so one sale per order needs its own index.
CREATE UNIQUE INDEX transactions_one_sale_per_order ON transactions (order_id)
    WHERE kind = 'sale';

-- The order's frozen facts a refund needs: who was paid and in which currency.
CREATE TABLE orders (
    order_id             text PRIMARY KEY,
    sale_transaction_id  uuid NOT NULL UNIQUE REFERENCES transactions (id),
    shop_id              text NOT NULL,
    seller_id            text NOT NULL,
    shop_kind            text NOT NULL CHECK (shop_kind IN ('third_party', 'first_party')),
    creator_id           text,  -- the creator credited with commission, if any
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- Entries: debit positive, credit negative. The composite key keeps an entry in its
-- account's currency.
CREATE TABLE entries (
    id              bigserial PRIMARY KEY,
    transaction_id  uuid NOT NULL REFERENCES transactions (id),
    account_id      bigint NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor <> 0),
    currency        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency)
);
CREATE INDEX entries_by_account ON entries (account_id, id) INCLUDE (amount_minor);
CREATE INDEX entries_by_transaction ON entries (transaction_id);

-- Every transaction balances, per currency, when the database transaction commits
-- (deferred, so its entries can be inserted one statement at a time).
CREATE FUNCTION ledger_check_balanced() RETURNS trigger
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
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER entries_balanced
    AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: a mistake is corrected by a new transaction, never by
-- editing history.
CREATE FUNCTION ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Balances, derived from entries every time: nothing stored can drift from the entries.
-- LATERAL keeps a filter on accounts cheap: only the chosen accounts' entries are summed,
-- from the covering index.
CREATE VIEW account_balances AS
SELECT a.id, a.owner_type, a.owner_id, a.kind, a.currency, a.created_at,
       b.balance_minor, b.entry_count
FROM accounts a
CROSS JOIN LATERAL (
    SELECT coalesce(sum(e.amount_minor), 0)::bigint AS balance_minor, count(*) AS entry_count
    FROM entries e WHERE e.account_id = a.id
) b;
