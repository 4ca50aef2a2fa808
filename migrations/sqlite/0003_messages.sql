-- Durable 1:1 messages (chat module, modules/chat/msgstore).
--
-- chat_thread: one private thread per pair of users, user1_id < user2_id,
-- never two for the same pair (the UNIQUE constraint decides races).
-- last_seq is the seq of the thread's newest message: a batch of messages
-- takes last_seq+1.. for its messages and stores the new value in the same
-- transaction, so seqs are per thread, strictly increasing and gap-free.
-- AUTOINCREMENT: ids are never reused. Times are Unix milliseconds.
CREATE TABLE chat_thread (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT    NOT NULL DEFAULT 'private',
    user1_id   INTEGER NOT NULL REFERENCES users (uid),
    user2_id   INTEGER NOT NULL REFERENCES users (uid),
    last_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    CHECK (user1_id < user2_id),
    UNIQUE (user1_id, user2_id)
);
-- A user's threads: user1_id is served by the UNIQUE index, user2_id by this.
CREATE INDEX chat_thread_user2 ON chat_thread (user2_id, id);

-- chat_message: (sender, client_id) is the sender's idempotency key: a
-- resent message maps to the stored one. Within a thread id order equals
-- seq order (writers are serialized). No foreign keys on this hot table:
-- thread_id, sender and receiver are always taken from a chat_thread row by
-- the store.
CREATE TABLE chat_message (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    sender     INTEGER NOT NULL,
    receiver   INTEGER NOT NULL,
    client_id  TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (thread_id, seq),
    UNIQUE (sender, client_id)
);
-- History paging (1029/1030): a thread's messages with id > cursor.
CREATE INDEX chat_message_thread_id ON chat_message (thread_id, id);

-- chat_cursor: uid has confirmed receiving the thread's messages up to
-- delivered_seq; no row means 0. It only moves forward.
CREATE TABLE chat_cursor (
    uid           INTEGER NOT NULL,
    thread_id     INTEGER NOT NULL REFERENCES chat_thread (id),
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, thread_id)
);
