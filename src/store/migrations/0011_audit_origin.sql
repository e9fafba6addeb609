-- Where an audited action came from: the API caller's address (and what a
-- proxy said it forwarded for), or the host the CLI ran on.
ALTER TABLE dlq_audit ADD COLUMN origin text;
