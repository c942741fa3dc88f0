-- keyfence-store schema v2: fewer pages per journal commit (each page a commit touches is
-- written to the WAL in full). The journal's ts_ms index was never read; the reservations'
-- table keeps its rows in its primary key (one b-tree instead of a table and an index).

DROP INDEX journal_ts;

CREATE TABLE pending_v2 (
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
) WITHOUT ROWID;
INSERT INTO pending_v2 (id, ts_ms, bot, venue, day, notional, orders, positions, symbol, side, class)
    SELECT id, ts_ms, bot, venue, day, notional, orders, positions, symbol, side, class FROM pending;
DROP TABLE pending;
ALTER TABLE pending_v2 RENAME TO pending;
