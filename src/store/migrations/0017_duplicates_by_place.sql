-- Duplicates beyond coordinates (src/store/duplicates.rs, open.rs): the
-- candidates also take the open cases placed by address alone in the
-- grids and communities the batch's cases are placed in, with the keyed
-- hash of each candidate's caller. The locks are those of 0007; a batch
-- with a case placed by address alone locks its category whole. 0007's
-- function stays for hubs of that version during a rolling upgrade.
CREATE FUNCTION gridhub_duplicate_candidates_by_place(categories text[], whole text[],
                                                      cell_categories text[], cells text[],
                                                      earliest timestamptz,
                                                      grids text[], communities text[])
RETURNS TABLE (id uuid, case_no text, category text, lon double precision,
               lat double precision, received_at timestamptz, grid_id text,
               community text, phone_hash text)
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
        SELECT o.id, o.case_no, o.category, o.lon, o.lat, o.received_at, o.grid_id, o.community,
               (SELECT r.phone_hash FROM reporters r WHERE r.case_id = o.id LIMIT 1)
        FROM cases o
        WHERE o.parent_case_id IS NULL
          AND o.status NOT IN ('closed', 'merged', 'rejected', 'answered')
          AND o.category = ANY (categories) AND o.received_at >= earliest
          AND ((o.lon IS NOT NULL AND o.lat IS NOT NULL)
               OR o.grid_id = ANY (grids) OR o.community = ANY (communities));
END
$$;
