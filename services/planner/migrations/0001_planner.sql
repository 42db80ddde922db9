CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE IF NOT EXISTS agents (
    agent_id          text PRIMARY KEY,
    display_name      text        NOT NULL,
    team              text,
    region            text        NOT NULL,
    home_lat          double precision NOT NULL,
    home_lon          double precision NOT NULL,
    shift_start       time        NOT NULL DEFAULT '09:00',
    shift_end         time        NOT NULL DEFAULT '18:00',
    time_zone         text        NOT NULL DEFAULT 'Asia/Shanghai',
    daily_capacity    integer     NOT NULL CHECK (daily_capacity > 0),
    languages         text[]      NOT NULL DEFAULT '{zh-CN}',
    hardship_trained  boolean     NOT NULL DEFAULT false,
    certified_until   date        NOT NULL,
    active            boolean     NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS cases (
    account_id      text PRIMARY KEY,
    status          text        NOT NULL CHECK (status IN ('open', 'cured')),
    currency        text        NOT NULL,
    outstanding     numeric(18, 2) NOT NULL,
    overdue_amount  numeric(18, 2) NOT NULL,
    dpd             integer     NOT NULL,
    dpd_bucket      text        NOT NULL,
    priority_score  double precision NOT NULL,
    as_of           date        NOT NULL,
    lat             double precision,
    lon             double precision,
    address         jsonb       NOT NULL,
    contact         jsonb       NOT NULL,
    flags           jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS visits (
    visit_id     uuid PRIMARY KEY,
    account_id   text        NOT NULL REFERENCES cases (account_id),
    agent_id     text        NOT NULL REFERENCES agents (agent_id),
    plan_date    date        NOT NULL,
    sequence     integer     NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL CHECK (window_end > window_start),
    status       text        NOT NULL CHECK (status IN ('planned', 'cancelled', 'done')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- No case gets two open visits: the database says so, not a check-then-insert.
CREATE UNIQUE INDEX IF NOT EXISTS visits_one_open_per_case
    ON visits (account_id) WHERE status = 'planned';
CREATE INDEX IF NOT EXISTS visits_agent_day ON visits (agent_id, plan_date) WHERE status = 'planned';
