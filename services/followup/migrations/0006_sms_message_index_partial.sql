-- A job has a provider message id only once it is sent: index those alone. The full index took
-- an entry (NULL) for every job written, two per promise outcome, on the consumer's hot path;
-- receipts look jobs up by a message id, which implies it is not null, so they still use it.
DROP INDEX IF EXISTS sms_jobs_message;
CREATE INDEX IF NOT EXISTS sms_jobs_message_sent ON sms_jobs (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- The secret-clearing trigger (0005) only matters for jobs that hold a secret: say so in its WHEN,
-- which PostgreSQL checks without calling the function (it ran for every job written).
DROP TRIGGER IF EXISTS sms_jobs_forget_secret ON sms_jobs;
CREATE TRIGGER sms_jobs_forget_secret BEFORE INSERT OR UPDATE OF status ON sms_jobs
    FOR EACH ROW WHEN (NEW.secret_params AND NEW.status <> 'pending')
    EXECUTE FUNCTION sms_jobs_forget_secret();
