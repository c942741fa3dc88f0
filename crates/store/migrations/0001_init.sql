-- keyfence-store schema v1. Amounts are TEXT (exact rust_decimal strings), times are Unix ms.

-- Kill switch: a single row. A missing or unreadable row means Halted.
CREATE TABLE control (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    mode        TEXT    NOT NULL,
    who         TEXT    NOT NULL,
    why         TEXT    NOT NULL,
    changed_ms  INTEGER NOT NULL
);

CREATE TABLE bots (
    name        TEXT    PRIMARY KEY,
    venue       TEXT    NOT NULL,
    key_label   TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    allow_ips   TEXT    NOT NULL,   -- JSON array of CIDRs; empty = any
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

-- Bot credentials: `sealed` is age-armored by the caller; the store never sees plaintext.
CREATE TABLE credentials (
    id              TEXT    PRIMARY KEY,
    bot             TEXT    NOT NULL REFERENCES bots(name) ON DELETE CASCADE,
    api_key         TEXT    NOT NULL UNIQUE,
    sealed          TEXT,
    public_key      TEXT,
    created_ms      INTEGER NOT NULL,
    valid_until_ms  INTEGER
);
CREATE INDEX credentials_bot ON credentials(bot);

CREATE TABLE nonce_floors (
    key    TEXT    PRIMARY KEY,
    floor  INTEGER NOT NULL
);

-- The hash-chained journal. Never holds secrets, signatures or query strings.
CREATE TABLE journal (
    seq              INTEGER PRIMARY KEY,
    ts_ms            INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    bot              TEXT,
    venue            TEXT,
    class            TEXT,
    method           TEXT,
    path             TEXT,
    symbol           TEXT,
    side             TEXT,
    quantity         TEXT,
    notional         TEXT,
    decision         TEXT    NOT NULL,
    rules            TEXT    NOT NULL,   -- JSON array
    upstream_status  INTEGER,
    latency_us       INTEGER,
    order_id         TEXT,
    message          TEXT,
    positions        TEXT    NOT NULL,   -- JSON [[symbol, delta], ...]
    orders           INTEGER NOT NULL,
    prev_hash        TEXT    NOT NULL,
    hash             TEXT    NOT NULL
);
CREATE INDEX journal_ts ON journal(ts_ms);

-- Ed25519-signed checkpoints over (seq, hash, ts_ms).
CREATE TABLE checkpoints (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,
    public_key  TEXT    NOT NULL,   -- hex
    signature   TEXT    NOT NULL    -- hex
);

-- Durable reservations for trading requests in flight; removed in the same transaction as the
-- journal entry that records the outcome, or turned into "recovery" entries after a crash.
CREATE TABLE pending (
    id         TEXT    PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    bot        TEXT    NOT NULL,
    venue      TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    notional   TEXT    NOT NULL,
    orders     INTEGER NOT NULL,
    positions  TEXT    NOT NULL,
    symbol     TEXT,
    side       TEXT,
    class      TEXT    NOT NULL
);
