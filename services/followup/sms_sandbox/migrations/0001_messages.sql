CREATE TABLE IF NOT EXISTS messages (
    message_id      uuid PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,
    to_number       text        NOT NULL,
    sender_id       text        NOT NULL,
    template_id     text        NOT NULL,
    language        text        NOT NULL,
    text            text        NOT NULL,
    status          text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
