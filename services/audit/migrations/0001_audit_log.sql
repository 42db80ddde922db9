-- The contact audit trail: every contact attempt — planned, performed, refused, failed —
-- appended from the event streams. Append-only and hash-chained (tamper-evident).

CREATE TABLE IF NOT EXISTS audit_log (
    seq          bigint PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    account_id   text        NOT NULL,
    actor        text        NOT NULL,
    channel      text        NOT NULL,
    stage        text        NOT NULL CHECK (stage IN ('planned', 'performed', 'refused', 'failed', 'cancelled')),
    outcome      text        NOT NULL,
    decision     jsonb       NOT NULL,
    event_type   text        NOT NULL,
    caused_by    text,
    prev_hash    text        NOT NULL,
    hash         text        NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_account ON audit_log (account_id, seq);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (occurred_at);

-- The chain's head: appends lock this row, so the chain never forks across replicas.
CREATE TABLE IF NOT EXISTS audit_head (
    id        smallint PRIMARY KEY CHECK (id = 1),
    last_seq  bigint NOT NULL,
    last_hash text   NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;

-- Purges past the retention period leave a checkpoint so what remains still verifies.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    purged_through_seq bigint      PRIMARY KEY,
    last_purged_hash   text        NOT NULL,
    purged_at          timestamptz NOT NULL DEFAULT now(),
    retention_days     integer     NOT NULL
);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('audit.purge_before', true) IS NOT NULL
       AND current_setting('audit.purge_before', true) <> ''
       AND OLD.occurred_at < current_setting('audit.purge_before', true)::timestamptz THEN
        RETURN OLD;  -- retention purge of expired records, through purge_expired() only
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
