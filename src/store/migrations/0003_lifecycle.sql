-- The closed loop: routing, dispatch, deadlines, escalation, duplicates,
-- and the district's grid reference data.

ALTER TABLE cases
    ADD COLUMN status_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lead_connector    text,
    ADD COLUMN unplaced          boolean NOT NULL DEFAULT false,
    ADD COLUMN dispatched_at     timestamptz,
    ADD COLUMN accept_due_at     timestamptz,
    ADD COLUMN accept_overdue    boolean NOT NULL DEFAULT false,
    ADD COLUMN return_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN callback_wanted   boolean NOT NULL DEFAULT false,
    ADD COLUMN contacted         boolean,
    ADD COLUMN solved            boolean,
    ADD COLUMN closed_at         timestamptz;

-- Duplicate detection looks for open cases of a category in a time window.
CREATE INDEX cases_open_by_category ON cases (category, received_at)
    WHERE parent_case_id IS NULL AND status NOT IN ('closed', 'merged', 'rejected', 'answered');
-- The overdue scanner looks for running deadlines.
CREATE INDEX cases_running_deadlines ON cases (due_at)
    WHERE status IN ('dispatched', 'accepted', 'in_progress', 'rework', 'returned');
CREATE INDEX cases_parent ON cases (parent_case_id) WHERE parent_case_id IS NOT NULL;

-- The district's grid division (网格), from the planning commission.
CREATE TABLE grids (
    grid_id        text PRIMARY KEY,
    community      text NOT NULL,
    community_kind text,
    street         text NOT NULL,
    -- Outer ring: [[lon, lat], ...] (WGS84).
    polygon        jsonb NOT NULL,
    retired        boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Known addresses (门牌) and their grid: the gazetteer's exact matches.
CREATE TABLE known_addresses (
    address    text PRIMARY KEY,
    grid_id    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Bumped whenever reference data changes, so every hub reloads it.
CREATE TABLE reference_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL
);
INSERT INTO reference_versions (name, version) VALUES ('grids', 0);
