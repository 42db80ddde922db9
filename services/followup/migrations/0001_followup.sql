-- How to reach a customer, projected from delinquency events. Never logged.
CREATE TABLE IF NOT EXISTS contacts (
    account_id  text PRIMARY KEY,
    phone       text,
    language    text        NOT NULL,
    time_zone   text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS promises (
    promise_id       uuid PRIMARY KEY,
    account_id       text           NOT NULL,
    outcome_event_id uuid           NOT NULL UNIQUE,
    amount           numeric(18, 2) NOT NULL,
    currency         text,
    promised_date    date           NOT NULL,
    status           text           NOT NULL CHECK (status IN ('open', 'kept', 'broken')),
    created_at       timestamptz    NOT NULL DEFAULT now()
);

-- One row per (trigger event, action): whatever is redelivered or retried, one SMS.
CREATE TABLE IF NOT EXISTS sms_jobs (
    job_id              uuid PRIMARY KEY,
    trigger_event_id    uuid        NOT NULL,
    action              text        NOT NULL,
    account_id          text        NOT NULL,
    template_id         text        NOT NULL,
    params              jsonb       NOT NULL,
    status              text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    due_at              timestamptz NOT NULL,
    attempts            integer     NOT NULL DEFAULT 0,
    last_error          text,
    provider_message_id text,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (trigger_event_id, action)
);
CREATE INDEX IF NOT EXISTS sms_jobs_due ON sms_jobs (due_at) WHERE status = 'pending';

CREATE OR REPLACE FUNCTION sms_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sms_jobs_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS sms_jobs_notify ON sms_jobs;
CREATE TRIGGER sms_jobs_notify AFTER INSERT ON sms_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION sms_jobs_notify();
