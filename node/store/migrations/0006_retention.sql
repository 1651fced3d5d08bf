-- Retention (issue 15 item 7): when the hub drops the undelivered head of a follower's
-- stream (the follower stayed away longer than the outbox retention), the stream resumes at
-- resume_seq, and every notify of the stream says so (mimi-notify-resume), so that the
-- follower stops waiting for the dropped numbers and has its devices resync.
ALTER TABLE outbox_streams ADD COLUMN resume_seq BIGINT NOT NULL DEFAULT 0;
