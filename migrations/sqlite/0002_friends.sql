-- Friendship (chat module, modules/chat/chatstore).
--
-- friend_apply holds one application per (applicant, target) pair; applying
-- again refreshes it. greeting is 1009 applyname, remark is 1009 bakname (the
-- applicant's remark for the friend). status: 0 pending, 1 approved.
-- Times are Unix milliseconds.
CREATE TABLE friend_apply (
    from_uid   INTEGER NOT NULL REFERENCES users (uid),
    to_uid     INTEGER NOT NULL REFERENCES users (uid),
    greeting   TEXT    NOT NULL DEFAULT '',
    remark     TEXT    NOT NULL DEFAULT '',
    status     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (from_uid, to_uid)
);
CREATE INDEX friend_apply_to_status ON friend_apply (to_uid, status);

-- friend has one row per direction: uid has friend_uid as a friend, and
-- remark is uid's remark ("back") for friend_uid.
CREATE TABLE friend (
    uid        INTEGER NOT NULL REFERENCES users (uid),
    friend_uid INTEGER NOT NULL REFERENCES users (uid),
    remark     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, friend_uid)
);
