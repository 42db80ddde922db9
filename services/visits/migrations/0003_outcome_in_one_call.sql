-- An outcome's whole write in one call (one round trip, one implicit transaction): lock the
-- agent's visit, claim the Idempotency-Key with the response already built, insert the outcome,
-- complete the visit, record the cash and stage the event in the outbox.
--
-- It only takes the common case: a new outcome for a visit that is not cancelled. Anything
-- else changes nothing and is answered by the general path (services/visits/handlers.py):
-- 'not_found', 'cancelled' and 'key_used' return before writing; an outcome id or a receipt
-- number used already raise VF409, which rolls the key claim back with the rest.
CREATE OR REPLACE FUNCTION record_outcome(
    p_outcome_id uuid, p_visit_id uuid, p_agent_id text, p_kind text, p_detail jsonb, p_notes text,
    p_recording_ref text, p_recorded_at timestamptz, p_observation jsonb, p_fingerprint text,
    p_key text, p_response bytea,
    p_receipt_number text, p_amount numeric, p_currency text, p_collected_on date,
    p_confirmation_method text, p_confirmation_ref text,
    p_topic text, p_event_key bytea, p_event_value bytea, p_header_keys text[], p_header_values bytea[]
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    current_status text;
BEGIN
    SELECT status INTO current_status FROM visits
     WHERE visit_id = p_visit_id AND agent_id = p_agent_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    ELSIF current_status = 'cancelled' THEN
        RETURN 'cancelled';
    END IF;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (agent_id, key, fingerprint, status_code, response)
        VALUES (p_agent_id, p_key, p_fingerprint, 201, p_response) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN 'key_used';
        END IF;
    END IF;
    INSERT INTO outcomes (outcome_id, visit_id, agent_id, kind, detail, notes, recording_ref, recorded_at,
                          visit_cancelled_before, observation, fingerprint)
    VALUES (p_outcome_id, p_visit_id, p_agent_id, p_kind, p_detail, p_notes, p_recording_ref, p_recorded_at,
            false, p_observation, p_fingerprint)
    ON CONFLICT (outcome_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outcome_id already recorded' USING ERRCODE = 'VF409';
    END IF;
    UPDATE visits SET status = 'completed', updated_at = now()
     WHERE visit_id = p_visit_id AND status = 'assigned';
    IF p_receipt_number IS NOT NULL THEN
        INSERT INTO cash_collections (outcome_id, agent_id, receipt_number, amount, currency, collected_on,
                                      confirmation_method, confirmation_ref)
        VALUES (p_outcome_id, p_agent_id, p_receipt_number, p_amount, p_currency, p_collected_on,
                p_confirmation_method, p_confirmation_ref)
        ON CONFLICT ON CONSTRAINT cash_receipt_unique_per_agent DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'receipt number already used' USING ERRCODE = 'VF409';
        END IF;
    END IF;
    INSERT INTO outbox (topic, key, value, header_keys, header_values)
    VALUES (p_topic, p_event_key, p_event_value, p_header_keys, p_header_values);
    RETURN 'recorded';
END $$;
