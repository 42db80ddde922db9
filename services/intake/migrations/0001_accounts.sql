CREATE TABLE IF NOT EXISTS accounts (
    account_id        text PRIMARY KEY,
    customer_id       text        NOT NULL,
    as_of             date        NOT NULL,
    delinquent        boolean     NOT NULL,
    dpd_bucket        text        NOT NULL,
    outstanding       numeric(18, 2) NOT NULL,
    overdue_amount    numeric(18, 2) NOT NULL,
    last_payment_date date,
    flags             jsonb       NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A batch's idempotency key and the answer it got: a re-sent batch gets the same answer.
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key text PRIMARY KEY,
    request_hash    text        NOT NULL,
    result          jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

-- Snapshots older than the account's last known state, kept with the reason they were ignored.
CREATE TABLE IF NOT EXISTS ignored_snapshots (
    id             bigserial PRIMARY KEY,
    account_id     text        NOT NULL,
    snapshot_as_of date        NOT NULL,
    known_as_of    date        NOT NULL,
    source         text        NOT NULL,
    reason         text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
