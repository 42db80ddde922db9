-- Follow-up rules: facts for the compliance policy, one contact ledger, call tasks, care
-- referrals, disputes, SMS receipts and opt-outs. Every external side effect keeps a row
-- keyed UNIQUE (trigger_event_id, action): one trigger, one effect.

-- What the compliance policy needs about a customer (no names; the phone only to send).
ALTER TABLE contacts
    ADD COLUMN IF NOT EXISTS customer_id  text,
    ADD COLUMN IF NOT EXISTS country      text,
    ADD COLUMN IF NOT EXISTS product      text,
    ADD COLUMN IF NOT EXISTS dpd          integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS flags        jsonb   NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS sms_opt_out  boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS call_opt_out boolean NOT NULL DEFAULT false;
-- Inbound SMS (STOP / 退订) name the sender's number only.
CREATE INDEX IF NOT EXISTS contacts_phone ON contacts (phone);

-- One ledger across channels: contacts made (sms, call, visit) and facts that make further
-- contact pointless (payment, promise). Read for compliance history and for the
-- "pointless" rules; append-only.
CREATE TABLE IF NOT EXISTS contact_ledger (
    entry_id    bigserial PRIMARY KEY,
    account_id  text        NOT NULL,
    source_id   uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('sms', 'call', 'visit', 'payment', 'promise')),
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    connected   boolean     NOT NULL DEFAULT false,
    number_id   text,
    amount      numeric(18, 2),
    detail      text,
    UNIQUE (source_id, kind)
);
CREATE INDEX IF NOT EXISTS contact_ledger_account ON contact_ledger (account_id, recorded_at);

ALTER TABLE promises
    ADD COLUMN IF NOT EXISTS made_at         timestamptz,
    ADD COLUMN IF NOT EXISTS due_check_at    timestamptz,
    ADD COLUMN IF NOT EXISTS paid_amount     numeric(18, 2) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS broken_count    integer,
    ADD COLUMN IF NOT EXISTS broken_event_id uuid,
    ADD COLUMN IF NOT EXISTS settled_at      timestamptz;
ALTER TABLE promises DROP CONSTRAINT IF EXISTS promises_status_check;
ALTER TABLE promises ADD CONSTRAINT promises_status_check
    CHECK (status IN ('open', 'kept', 'broken', 'superseded'));
CREATE INDEX IF NOT EXISTS promises_due ON promises (due_check_at) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS promises_account ON promises (account_id, status);

ALTER TABLE sms_jobs
    ADD COLUMN IF NOT EXISTS purpose         text NOT NULL DEFAULT 'collection',
    ADD COLUMN IF NOT EXISTS not_after       timestamptz,
    ADD COLUMN IF NOT EXISTS promise_id      uuid,
    -- The event the contact is about when it is not the trigger itself (a broken promise's
    -- visit): facts from it never make the contact pointless.
    ADD COLUMN IF NOT EXISTS basis_event_id  uuid,
    ADD COLUMN IF NOT EXISTS closed_reason   text,
    ADD COLUMN IF NOT EXISTS delivery_status text,
    ADD COLUMN IF NOT EXISTS delivered_at    timestamptz;
ALTER TABLE sms_jobs DROP CONSTRAINT IF EXISTS sms_jobs_status_check;
ALTER TABLE sms_jobs ADD CONSTRAINT sms_jobs_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'cancelled'));
CREATE INDEX IF NOT EXISTS sms_jobs_account ON sms_jobs (account_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS sms_jobs_message ON sms_jobs (provider_message_id);
CREATE INDEX IF NOT EXISTS sms_jobs_created ON sms_jobs (created_at);

-- Call tasks for the dialer: pulled when due (leased), answered with a result.
CREATE TABLE IF NOT EXISTS call_tasks (
    task_id          uuid PRIMARY KEY,
    trigger_event_id uuid        NOT NULL,
    action           text        NOT NULL,
    account_id       text        NOT NULL,
    basis_event_id   uuid,
    reason           text        NOT NULL,
    purpose          text        NOT NULL DEFAULT 'collection',
    -- Vulnerable customers are called only by hardship-trained agents.
    needs_trained_agent boolean  NOT NULL DEFAULT false,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'claimed', 'completed', 'suppressed', 'cancelled')),
    due_at           timestamptz NOT NULL,
    not_after        timestamptz,
    claimed_by       text,
    lease_until      timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    result           text,
    completed_at     timestamptz,
    closed_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (trigger_event_id, action)
);
CREATE INDEX IF NOT EXISTS call_tasks_due ON call_tasks (due_at) WHERE status IN ('pending', 'claimed');
CREATE INDEX IF NOT EXISTS call_tasks_account ON call_tasks (account_id);

-- Care-program referrals: created with the customer's consent, worked by the care team.
-- Hardship categories can be health data: only the care role reads them.
CREATE TABLE IF NOT EXISTS care_referrals (
    referral_id      uuid PRIMARY KEY,
    trigger_event_id uuid        NOT NULL,
    action           text        NOT NULL,
    account_id       text        NOT NULL,
    program          text        NOT NULL CHECK (program IN ('deferral', 'restructuring', 'counselling')),
    rule             text        NOT NULL,
    category         text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('open', 'accepted', 'closed')),
    accepted_by      text,
    accepted_at      timestamptz,
    closed_by        text,
    closed_at        timestamptz,
    resolution       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (trigger_event_id, action)
);
CREATE INDEX IF NOT EXISTS care_referrals_status ON care_referrals (status, created_at);
CREATE INDEX IF NOT EXISTS care_referrals_account ON care_referrals (account_id);

-- Disputes raised at the door: collection holds until the dispute team resolves them.
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id       uuid PRIMARY KEY,
    trigger_event_id uuid        NOT NULL UNIQUE,
    account_id       text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution       text,
    resolved_by      text,
    resolved_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS disputes_status ON disputes (status, created_at);
CREATE INDEX IF NOT EXISTS disputes_account ON disputes (account_id);

-- Delivery receipts already applied (a gateway retries its webhooks).
CREATE TABLE IF NOT EXISTS sms_receipts (
    provider_message_id text        NOT NULL,
    status              text        NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_message_id, status)
);

-- Inbound SMS already applied. Neither the number nor the text is kept.
CREATE TABLE IF NOT EXISTS inbound_sms (
    provider_message_id text PRIMARY KEY,
    kind                text        NOT NULL CHECK (kind IN ('opt_out', 'other')),
    accounts            integer     NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
);
