-- keyfence-store schema v3: reservations move from the `pending` table to the gateway's
-- reservation log (files beside the database, appended without a transaction). A journal entry
-- names the reservation it settles, so recovery after a crash can tell which logged
-- reservations have an outcome. Bookkeeping only: not part of the entry's hash (a changed value
-- could only make recovery journal an extra "recovery" entry, which counts against caps).
-- `pending` stays for reservations a v2 store had in flight; recovery empties it.

ALTER TABLE journal ADD COLUMN reservation TEXT;
