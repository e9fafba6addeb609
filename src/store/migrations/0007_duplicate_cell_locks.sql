-- Duplicate detection locks per category and place (src/store/duplicates.rs):
-- every category of the batch's located cases shared, or whole (exclusive)
-- when the batch touches too many cells of it; then each (category, cell)
-- exclusive. Locks are taken in one order (categories by name, then cells
-- by key), so transactions cannot deadlock on them. The category lock is
-- the one of 0006, which hubs of that version take exclusively: the two
-- kinds exclude each other while both run during a rolling upgrade, and
-- 0006's function stays for them.
CREATE FUNCTION gridhub_duplicate_candidates(categories text[], whole text[],
                                             cell_categories text[], cells text[],
                                             earliest timestamptz)
RETURNS TABLE (id uuid, case_no text, category text, lon double precision,
               lat double precision, received_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    c text;
    k1 integer;
    k2 integer;
BEGIN
    FOR c IN SELECT DISTINCT u FROM unnest(categories) AS u ORDER BY u LOOP
        IF c = ANY (whole) THEN
            PERFORM pg_advisory_xact_lock(hashtext('gridhub.duplicates.' || c));
        ELSE
            PERFORM pg_advisory_xact_lock_shared(hashtext('gridhub.duplicates.' || c));
        END IF;
    END LOOP;
    FOR k1, k2 IN
        SELECT DISTINCT hashtext('gridhub.duplicates.' || t.c), hashtext(t.x)
        FROM unnest(cell_categories, cells) AS t(c, x) ORDER BY 1, 2
    LOOP
        PERFORM pg_advisory_xact_lock(k1, k2);
    END LOOP;
    RETURN QUERY
        SELECT o.id, o.case_no, o.category, o.lon, o.lat, o.received_at FROM cases o
        WHERE o.parent_case_id IS NULL
          AND o.status NOT IN ('closed', 'merged', 'rejected', 'answered')
          AND o.category = ANY (categories) AND o.received_at >= earliest
          AND o.lon IS NOT NULL AND o.lat IS NOT NULL;
END
$$;
