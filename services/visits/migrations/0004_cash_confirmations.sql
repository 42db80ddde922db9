-- One-time codes confirming cash taken at the door: visits draws the code, follow-up texts it to
-- the customer (visit.cash_confirmation_requested), the customer reads it back to the agent, and
-- the cash outcome carries it. Only a hash is kept; a code confirms one amount and one receipt,
-- once, before it expires, within a few attempts (counted even when the request fails).
CREATE TABLE IF NOT EXISTS cash_confirmations (
    confirmation_id uuid PRIMARY KEY,
    visit_id        uuid          NOT NULL REFERENCES visits (visit_id),
    agent_id        text          NOT NULL,
    amount          numeric(18,2) NOT NULL CHECK (amount > 0),
    currency        text          NOT NULL,
    receipt_number  text          NOT NULL,
    code_hash       text          NOT NULL,
    expires_at      timestamptz   NOT NULL,
    attempts        integer       NOT NULL DEFAULT 0,
    used_by         uuid REFERENCES outcomes (outcome_id),
    fingerprint     text          NOT NULL,
    created_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cash_confirmations_visit ON cash_confirmations (visit_id);
