-- Accounts. uid is handed out by the database (AUTOINCREMENT never reuses ids),
-- starting at 1001 like the PostgreSQL identity. email_key is the lower-cased
-- e-mail: emails are unique case-insensitively.
CREATE TABLE users (
    uid        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    email      TEXT    NOT NULL,
    email_key  TEXT    NOT NULL UNIQUE,
    pwd_hash   TEXT    NOT NULL,
    nick       TEXT    NOT NULL DEFAULT '',
    descr      TEXT    NOT NULL DEFAULT '',
    sex        INTEGER NOT NULL DEFAULT 0,
    icon       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) VALUES ('users', 1000);
