-- Delivery receipts and replies are reported to the sender's webhooks, like a real gateway.
ALTER TABLE messages
    ADD COLUMN IF NOT EXISTS template_params     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS status_callback_url text,
    ADD COLUMN IF NOT EXISTS reply_callback_url  text,
    ADD COLUMN IF NOT EXISTS status_updated_at   timestamptz;
CREATE INDEX IF NOT EXISTS messages_to ON messages (to_number, received_at);
