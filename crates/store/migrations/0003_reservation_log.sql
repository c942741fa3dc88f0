-- keyfence-store schema v3: reservations move from the `pending` table to the gateway's
-- reservation log (files beside the database, appended without a transaction). A journal entry
-- names the reservation it settles, so recovery after a crash can tell which logged
-- reservations have an outcome. Not part of the entry's hash: someone who can write the file
-- can set it to the id of a reservation in flight and so keep recovery from journaling it (like
-- other edits after the last signed checkpoint, `journal verify` cannot see that).
-- `pending` stays for reservations a v2 store had in flight; recovery empties it.

ALTER TABLE journal ADD COLUMN reservation TEXT;
