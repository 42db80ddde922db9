-- Who may read an SMS: the debtor, or possibly a third party (after a visit that met only a
-- third party). A third party's message never carries debt details (templates.for_recipient).
ALTER TABLE sms_jobs
    ADD COLUMN IF NOT EXISTS recipient text NOT NULL DEFAULT 'debtor'
        CHECK (recipient IN ('debtor', 'third_party'));
