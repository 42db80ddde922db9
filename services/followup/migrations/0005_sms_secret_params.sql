-- A job whose parameters hold a secret (the one-time code of a cash confirmation) keeps them
-- only while it is pending: once it is sent, failed, cancelled or suppressed they are cleared,
-- whichever code path closes it (docs/followup.md, "One-time codes").
ALTER TABLE sms_jobs ADD COLUMN IF NOT EXISTS secret_params boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION sms_jobs_forget_secret() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.secret_params AND NEW.status <> 'pending' THEN
        NEW.params := '{}'::jsonb;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS sms_jobs_forget_secret ON sms_jobs;
CREATE TRIGGER sms_jobs_forget_secret BEFORE INSERT OR UPDATE OF status ON sms_jobs
    FOR EACH ROW EXECUTE FUNCTION sms_jobs_forget_secret();
