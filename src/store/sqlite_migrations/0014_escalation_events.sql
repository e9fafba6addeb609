-- See migrations/0020_escalation_events.sql.
CREATE INDEX case_events_escalations ON case_events (at)
    WHERE kind IN ('deadline_warning', 'sign_for_overdue', 'reminder', 'remind', 'supervision',
                   'supervise', 'callback_overdue');
