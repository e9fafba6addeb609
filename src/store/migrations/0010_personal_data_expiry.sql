-- When a reporter's name, phone and ID number were erased (N days after
-- their case ended): the row stays, so that the case keeps whether the
-- reporter was anonymous, asked for confidentiality or agreed to a callback.
ALTER TABLE reporters ADD COLUMN erased_at timestamptz;
