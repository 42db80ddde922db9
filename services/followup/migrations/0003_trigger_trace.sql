-- The trace of the event that caused a contact, kept with the contact: the events published
-- later (sms.sent, sms.delivery_updated, call.completed, promise.broken, a hold lifted,
-- contact.suppressed when due) continue that trace (a child span) and correlation.
-- NULL for rows written before this migration: their events start a trace of their own.
ALTER TABLE sms_jobs
    ADD COLUMN IF NOT EXISTS trigger_traceparent    text,
    ADD COLUMN IF NOT EXISTS trigger_correlation_id text;
ALTER TABLE call_tasks
    ADD COLUMN IF NOT EXISTS trigger_traceparent    text,
    ADD COLUMN IF NOT EXISTS trigger_correlation_id text;
ALTER TABLE promises
    ADD COLUMN IF NOT EXISTS trigger_traceparent    text,
    ADD COLUMN IF NOT EXISTS trigger_correlation_id text;
ALTER TABLE care_referrals
    ADD COLUMN IF NOT EXISTS trigger_traceparent    text,
    ADD COLUMN IF NOT EXISTS trigger_correlation_id text;
ALTER TABLE disputes
    ADD COLUMN IF NOT EXISTS trigger_traceparent    text,
    ADD COLUMN IF NOT EXISTS trigger_correlation_id text;
