-- Duplicate detection in one round trip: lock the categories (an advisory
-- lock each, in a fixed order), then read their open cases. In a VOLATILE
-- function each query takes a fresh snapshot, so the read sees every case
-- committed by whoever held a lock before; a plain statement doing both
-- would read with a snapshot taken before it waited for the locks.
CREATE FUNCTION gridhub_duplicate_candidates(categories text[], earliest timestamptz)
RETURNS TABLE (id uuid, case_no text, category text, lon double precision,
               lat double precision, received_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('gridhub.duplicates.' || c))
    FROM unnest(categories) AS c ORDER BY c;
    RETURN QUERY
        SELECT o.id, o.case_no, o.category, o.lon, o.lat, o.received_at FROM cases o
        WHERE o.parent_case_id IS NULL
          AND o.status NOT IN ('closed', 'merged', 'rejected', 'answered')
          AND o.category = ANY (categories) AND o.received_at >= earliest
          AND o.lon IS NOT NULL AND o.lat IS NOT NULL;
END
$$;
