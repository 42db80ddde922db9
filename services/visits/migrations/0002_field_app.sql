-- The field agents' app: teams, check-ins, cash on site and deposits, idempotent writes.

-- The agent's team, from visit.assigned: what a supervisor's token claim `team` sees.
ALTER TABLE visits ADD COLUMN IF NOT EXISTS team text;
CREATE INDEX IF NOT EXISTS visits_team_day ON visits (team, plan_date) WHERE team IS NOT NULL;

-- Outcomes: the agent's observation, and the fingerprint of the body that created the row,
-- so a client id sent again with another body is a conflict rather than a silent no-op.
ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS observation jsonb;
ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS fingerprint text;

-- Every check-in is kept, refused or not (audit). Positions are personal data (PIPL: location
-- tracks are sensitive): they stay in this table and never reach events, logs or errors.
CREATE TABLE IF NOT EXISTS checkins (
    checkin_id      uuid PRIMARY KEY,
    visit_id        uuid             NOT NULL REFERENCES visits (visit_id),
    agent_id        text             NOT NULL,
    device_time     timestamptz      NOT NULL,
    received_at     timestamptz      NOT NULL,
    checked_in_at   timestamptz      NOT NULL,
    clock_skew_s    double precision NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    accuracy_m      double precision NOT NULL,
    mock_location   boolean          NOT NULL,
    distance_m      double precision,
    accepted        boolean          NOT NULL,
    refusal_rule    text,
    refusal_reason  text,
    pack_version    text,
    flags           jsonb            NOT NULL DEFAULT '[]',
    fingerprint     text             NOT NULL
);
CREATE INDEX IF NOT EXISTS checkins_visit ON checkins (visit_id);
-- Consecutive check-ins of an agent (impossible travel) and identical fixes (replays).
CREATE INDEX IF NOT EXISTS checkins_agent_time ON checkins (agent_id, checked_in_at);
CREATE INDEX IF NOT EXISTS checkins_fix ON checkins (lat, lon, accuracy_m);
CREATE INDEX IF NOT EXISTS checkins_flagged ON checkins (checked_in_at) WHERE flags <> '[]'::jsonb;

-- Cash taken at the door: one row per paid_on_site / partial_payment outcome. The receipt
-- book is the agent's, so its numbers are unique per agent.
CREATE TABLE IF NOT EXISTS cash_collections (
    outcome_id          uuid PRIMARY KEY REFERENCES outcomes (outcome_id),
    agent_id            text          NOT NULL,
    receipt_number      text          NOT NULL,
    amount              numeric(18,2) NOT NULL CHECK (amount > 0),
    currency            text          NOT NULL,
    collected_on        date          NOT NULL,
    confirmation_method text          NOT NULL CHECK (confirmation_method IN ('otp', 'signature')),
    confirmation_ref    text          NOT NULL,
    CONSTRAINT cash_receipt_unique_per_agent UNIQUE (agent_id, receipt_number)
);
CREATE INDEX IF NOT EXISTS cash_collections_agent_day ON cash_collections (agent_id, collected_on);

-- Cash the agent paid in at the bank; a slip counts once.
CREATE TABLE IF NOT EXISTS cash_deposits (
    deposit_id      uuid PRIMARY KEY,
    agent_id        text          NOT NULL,
    amount          numeric(18,2) NOT NULL CHECK (amount > 0),
    currency        text          NOT NULL,
    deposited_on    date          NOT NULL,
    bank_reference  text          NOT NULL,
    recorded_at     timestamptz   NOT NULL DEFAULT now(),
    fingerprint     text          NOT NULL,
    CONSTRAINT cash_deposit_slip_unique_per_agent UNIQUE (agent_id, bank_reference)
);
CREATE INDEX IF NOT EXISTS cash_deposits_agent_day ON cash_deposits (agent_id, deposited_on);

-- Idempotency-Key: the first response to a key, replayed byte for byte to every later send
-- of the same request; the key row is written in the transaction of the write it guards.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    agent_id     text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    status_code  integer,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
