-- What intake keeps of each account besides its lifecycle state: the facts the accounts API
-- lists (contact data masked by role) and the priority it was last scored with.
ALTER TABLE accounts
    ADD COLUMN IF NOT EXISTS product              text,
    ADD COLUMN IF NOT EXISTS currency             text,
    ADD COLUMN IF NOT EXISTS status               text,
    ADD COLUMN IF NOT EXISTS principal            numeric(18, 2),
    ADD COLUMN IF NOT EXISTS installment_amount   numeric(18, 2),
    ADD COLUMN IF NOT EXISTS last_payment_amount  numeric(18, 2),
    ADD COLUMN IF NOT EXISTS dpd                  integer,
    ADD COLUMN IF NOT EXISTS priority_score       double precision,
    ADD COLUMN IF NOT EXISTS segmentation_version text,
    ADD COLUMN IF NOT EXISTS customer_name        text,
    ADD COLUMN IF NOT EXISTS phone                text,
    ADD COLUMN IF NOT EXISTS language             text,
    ADD COLUMN IF NOT EXISTS time_zone            text,
    ADD COLUMN IF NOT EXISTS address_line1        text,
    ADD COLUMN IF NOT EXISTS address_city         text,
    ADD COLUMN IF NOT EXISTS address_region       text,
    ADD COLUMN IF NOT EXISTS address_postal_code  text,
    ADD COLUMN IF NOT EXISTS address_country      text,
    ADD COLUMN IF NOT EXISTS lat                  double precision,
    ADD COLUMN IF NOT EXISTS lon                  double precision;

-- Every daily file rewrites every row (the as-of date and DPD move): with half of each page
-- free, PostgreSQL can put the new versions beside the old ones (HOT updates: no new index
-- entries, less WAL) instead of growing the table and its index.
ALTER TABLE accounts SET (fillfactor = 50);

-- One row per imported file. A file is identified by its content hash and the encoding it
-- was read with: importing it again is a no-op. `high_water_*` is where the last committed
-- chunk ended; a killed import resumes there and never applies a row twice.
CREATE TABLE IF NOT EXISTS imports (
    import_id            uuid PRIMARY KEY,
    file_sha256          text        NOT NULL,
    encoding             text        NOT NULL,
    file_name            text,
    file_bytes           bigint      NOT NULL,
    source               text        NOT NULL CHECK (source IN ('upload', 'path')),
    stored_path          text,
    status               text        NOT NULL CHECK (status IN ('running', 'completed')),
    segmentation_version text        NOT NULL,
    trace_id             text        NOT NULL,
    high_water_row       bigint      NOT NULL DEFAULT 0,
    high_water_line      bigint      NOT NULL DEFAULT 0,
    high_water_byte      bigint      NOT NULL DEFAULT 0,
    rows_accepted        bigint      NOT NULL DEFAULT 0,
    rows_rejected        bigint      NOT NULL DEFAULT 0,
    rows_unchanged       bigint      NOT NULL DEFAULT 0,
    rows_out_of_order    bigint      NOT NULL DEFAULT 0,
    events_staged        bigint      NOT NULL DEFAULT 0,
    chunks_committed     integer     NOT NULL DEFAULT 0,
    started_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    UNIQUE (file_sha256, encoding)
);

-- The rejected-rows report: where and why, never the value (it may be personal data).
CREATE TABLE IF NOT EXISTS import_rejections (
    import_id  uuid    NOT NULL REFERENCES imports (import_id),
    row_no     bigint  NOT NULL,
    line_no    bigint  NOT NULL,
    column_name text   NOT NULL,
    reason     text    NOT NULL,
    seq        integer NOT NULL,
    PRIMARY KEY (import_id, row_no, seq)
);

-- Which row of which import an ignored snapshot was (NULL for JSON batches).
ALTER TABLE ignored_snapshots ADD COLUMN IF NOT EXISTS row_no bigint;
