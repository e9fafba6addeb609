-- The escalation events of the last hour, read at every scrape of
-- /metrics (gridhub_case_escalations_last_hour): an index of those kinds
-- alone, by time, so that the read stays a short range scan however large
-- the event log grows.
CREATE INDEX case_events_escalations ON case_events (at)
    WHERE kind IN ('deadline_warning', 'sign_for_overdue', 'reminder', 'remind', 'supervision',
                   'supervise', 'callback_overdue');
