-- What the strategy needs to know about a case, and what it decided.
ALTER TABLE cases
    ADD COLUMN IF NOT EXISTS region text,
    ADD COLUMN IF NOT EXISTS next_action text,
    ADD COLUMN IF NOT EXISTS next_action_rule text,
    ADD COLUMN IF NOT EXISTS strategy_version text,
    ADD COLUMN IF NOT EXISTS revisit_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS open_promise_until date,
    ADD COLUMN IF NOT EXISTS broken_promises integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS failed_calls_in_a_row integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_sms_at timestamptz,
    ADD COLUMN IF NOT EXISTS prior_contacts integer NOT NULL DEFAULT 0,
    -- The event that last sent the case to the door: its visit continues that trace.
    ADD COLUMN IF NOT EXISTS cause_event_id uuid,
    ADD COLUMN IF NOT EXISTS cause_correlation_id text,
    ADD COLUMN IF NOT EXISTS cause_traceparent text;
CREATE INDEX IF NOT EXISTS cases_to_visit ON cases (region, priority_score DESC)
    WHERE status = 'open' AND next_action = 'field_visit';

CREATE TABLE IF NOT EXISTS absences (
    agent_id text NOT NULL REFERENCES agents (agent_id),
    day      date NOT NULL,
    reason   text NOT NULL,
    PRIMARY KEY (agent_id, day)
);

CREATE TABLE IF NOT EXISTS plans (
    plan_id    uuid PRIMARY KEY,
    plan_date  date        NOT NULL,
    region     text        NOT NULL,
    solver     text        NOT NULL,
    summary    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Regions whose day must be (re)planned: written by event handlers, drained by the planner loop.
CREATE TABLE IF NOT EXISTS plan_requests (
    plan_date    date        NOT NULL,
    region       text        NOT NULL,
    reason       text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_date, region)
);

CREATE OR REPLACE FUNCTION plan_requests_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('plan_requests_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS plan_requests_notify ON plan_requests;
CREATE TRIGGER plan_requests_notify AFTER INSERT ON plan_requests
    FOR EACH STATEMENT EXECUTE FUNCTION plan_requests_notify();

-- A visit occupies its agent from arrival to departure: no agent has two overlapping visits,
-- whatever runs concurrently. The database says so, not a check-then-insert.
ALTER TABLE visits
    ADD COLUMN IF NOT EXISTS planned_start timestamptz,
    ADD COLUMN IF NOT EXISTS planned_end timestamptz,
    ADD COLUMN IF NOT EXISTS plan_id uuid;
ALTER TABLE visits DROP CONSTRAINT IF EXISTS visits_agent_no_overlap;
ALTER TABLE visits ADD CONSTRAINT visits_agent_no_overlap EXCLUDE USING gist (
    agent_id WITH =, tstzrange(planned_start, planned_end) WITH &&
) WHERE (status = 'planned' AND planned_start IS NOT NULL);
