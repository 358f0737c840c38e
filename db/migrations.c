/*
 * The schema, as an ordered list of migrations. db_migrations[i] takes a database
 * from PRAGMA user_version i to i + 1; db_open applies the missing ones in order,
 * each in its own transaction together with the new user_version.
 *
 * A migration, once released, is never edited: a change is a new entry at the end.
 *
 * Conventions: STRICT tables; dates 'YYYY-MM-DD' text; timestamps RFC 3339 UTC with
 * milliseconds ('2026-11-21T09:30:00.123Z', sorts as text); booleans 0/1; NULL means
 * "not stated". Enumerations of more than two values are CHECKed with OR, not
 * IN (...), which SQLite evaluates through a temporary b-tree (~100 KB) per row.
 * The audit rules live in the schema, so that no code path (nor a slip at the
 * sqlite3 prompt) can rewrite history: closed receipts, scans and events are final,
 * and event seqs have no gap.
 */
#include "db/db_internal.h"

static const char migration_1[] =
    "-- rmad schema 1: RMAs, receipts, scans, event outbox.\n"
    "\n"
    "-- RMAs issued upstream (CSV import or control socket), upserted by number.\n"
    "CREATE TABLE rmas (\n"
    "    number            TEXT PRIMARY KEY NOT NULL,\n"
    "    issued            TEXT NOT NULL CHECK (date(issued) IS issued),\n"
    "    kind              TEXT CHECK (kind = 'warranty' OR kind = 'credit'\n"
    "                                  OR kind = 'advance_replacement' OR kind = 'otc_exchange'),\n"
    "    vendor            TEXT NOT NULL,\n"
    "    model             TEXT,\n"
    "    family            TEXT,\n"
    "    expected_serial   TEXT,\n"
    "    purchased         TEXT CHECK (date(purchased) IS purchased),\n"
    "    shipped           TEXT CHECK (date(shipped) IS shipped),\n"
    "    invoiced          TEXT CHECK (date(invoiced) IS invoiced),\n"
    "    order_value       REAL CHECK (order_value >= 0),\n"
    "    warranty_months   INTEGER CHECK (warranty_months BETWEEN 0 AND 1200),\n"
    "    has_storage_media INTEGER CHECK (has_storage_media IN (0, 1)),\n"
    "    proof_of_purchase INTEGER CHECK (proof_of_purchase IN (0, 1)),\n"
    "    -- open until a receipt for it completes; a re-import never reopens it\n"
    "    status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'received')),\n"
    "    imported_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
    ") STRICT;\n"
    "\n"
    "-- One unit received at a station. Opened by an RMA scan (or CMD-NORMA), closed\n"
    "-- by CMD-DONE (completed), CMD-CANCEL (cancelled), or at once when refused.\n"
    "-- AUTOINCREMENT: a receipt id is never reused, it is printed on labels.\n"
    "CREATE TABLE receipts (\n"
    "    id          INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    station     TEXT NOT NULL,\n"
    "    -- the RMA number as scanned: no foreign key, a refused receipt keeps an\n"
    "    -- unknown number; NULL for a unit received with CMD-NORMA\n"
    "    rma         TEXT,\n"
    "    state       TEXT NOT NULL CHECK (state = 'open' OR state = 'completed'\n"
    "                                     OR state = 'cancelled' OR state = 'refused'),\n"
    "    opened_at   TEXT NOT NULL,\n"
    "    closed_at   TEXT,\n"
    "    serial      TEXT,\n"
    "    checklist   TEXT CHECK (checklist IS NULL OR json_valid(checklist)),  -- JSON\n"
    "    result      TEXT CHECK (result IS NULL OR json_valid(result)),  -- policy result, JSON\n"
    "    disposition TEXT,\n"
    "    reason      TEXT,                                 -- why refused / cancelled\n"
    "    CHECK ((state = 'open') = (closed_at IS NULL)),\n"
    "    CHECK (state <> 'completed' OR disposition IS NOT NULL)\n"
    ") STRICT;\n"
    "\n"
    "-- At most one open receipt per station; also finds it after a restart.\n"
    "CREATE UNIQUE INDEX receipts_open_per_station ON receipts (station) WHERE state = 'open';\n"
    "-- rmactl receipts: newest first.\n"
    "CREATE INDEX receipts_by_time ON receipts (opened_at);\n"
    "-- History of one RMA.\n"
    "CREATE INDEX receipts_by_rma ON receipts (rma) WHERE rma IS NOT NULL;\n"
    "\n"
    "CREATE TRIGGER receipts_closed_are_final BEFORE UPDATE ON receipts\n"
    "    WHEN OLD.state <> 'open'\n"
    "BEGIN SELECT RAISE(ABORT, 'receipt is closed and final'); END;\n"
    "CREATE TRIGGER receipts_keep_identity BEFORE UPDATE ON receipts\n"
    "    WHEN NEW.id IS NOT OLD.id OR NEW.station IS NOT OLD.station\n"
    "      OR NEW.rma IS NOT OLD.rma OR NEW.opened_at IS NOT OLD.opened_at\n"
    "BEGIN SELECT RAISE(ABORT, 'receipt id, station, rma and opened_at never change'); END;\n"
    "CREATE TRIGGER receipts_never_deleted BEFORE DELETE ON receipts\n"
    "BEGIN SELECT RAISE(ABORT, 'receipts are never deleted'); END;\n"
    "\n"
    "-- Every scan, accepted or rejected: the audit trail. raw holds the exact bytes\n"
    "-- received (invalid UTF-8 and NUL included); text the decoded form, if any.\n"
    "CREATE TABLE scans (\n"
    "    id         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    at         TEXT NOT NULL,\n"
    "    station    TEXT NOT NULL,\n"
    "    scanner    TEXT NOT NULL,\n"
    "    symbology  TEXT,                                  -- AIM id, e.g. ]C1\n"
    "    raw        BLOB NOT NULL,\n"
    "    text       TEXT,\n"
    "    kind       TEXT NOT NULL,                         -- classification by the station\n"
    "    accepted   INTEGER NOT NULL CHECK (accepted IN (0, 1)),\n"
    "    reason     TEXT,\n"
    "    receipt_id INTEGER REFERENCES receipts (id),\n"
    "    CHECK (accepted = 1 OR reason IS NOT NULL)         -- a rejection says why\n"
    ") STRICT;\n"
    "\n"
    "CREATE INDEX scans_by_receipt ON scans (receipt_id) WHERE receipt_id IS NOT NULL;\n"
    "CREATE INDEX scans_by_time ON scans (at);\n"
    "\n"
    "CREATE TRIGGER scans_are_final BEFORE UPDATE ON scans\n"
    "BEGIN SELECT RAISE(ABORT, 'scans are never changed'); END;\n"
    "CREATE TRIGGER scans_never_deleted BEFORE DELETE ON scans\n"
    "BEGIN SELECT RAISE(ABORT, 'scans are never deleted'); END;\n"
    "\n"
    "-- Every event the daemon commits, in the transaction of the change it reports.\n"
    "-- seq is the envelope's seq: 1, 2, 3 ... with no gap, for replay.\n"
    "CREATE TABLE outbox (\n"
    "    seq        INTEGER PRIMARY KEY CHECK (seq >= 1),\n"
    "    topic      TEXT NOT NULL CHECK (length(topic) BETWEEN 1 AND 64),\n"
    "    body       TEXT NOT NULL CHECK (json_valid(body)\n"
    "                                    AND json_type(body) = 'object'\n"
    "                                    AND json_extract(body, '$.seq') IS seq\n"
    "                                    AND json_extract(body, '$.type') IS topic),\n"
    "    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
    ") STRICT;\n"
    "\n"
    "CREATE TRIGGER outbox_gapless BEFORE INSERT ON outbox\n"
    "    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM outbox)\n"
    "BEGIN SELECT RAISE(ABORT, 'outbox seq must be the last seq + 1'); END;\n"
    "CREATE TRIGGER outbox_is_final BEFORE UPDATE ON outbox\n"
    "BEGIN SELECT RAISE(ABORT, 'events are never changed'); END;\n"
    "CREATE TRIGGER outbox_never_deleted BEFORE DELETE ON outbox\n"
    "BEGIN SELECT RAISE(ABORT, 'events are never deleted'); END;\n";

static const char migration_2[] =
    "-- rmad schema 2: the print queue.\n"
    "\n"
    "-- One row per label to print, inserted in the transaction of the receipt (or the\n"
    "-- CMD-REPRINT scan) that calls for it, so no label is lost or printed without its\n"
    "-- receipt. 'queued' waits for its attempt at next_at; 'submitted' is a CUPS job being\n"
    "-- followed (never submitted twice); 'printed' and 'cancelled' (by an operator in\n"
    "-- CUPS) are final.\n"
    "CREATE TABLE print_jobs (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    receipt_id  INTEGER NOT NULL REFERENCES receipts (id),\n"
    "    station     TEXT NOT NULL,\n"
    "    printer     TEXT NOT NULL CHECK (length(printer) BETWEEN 1 AND 127),\n"
    "    why         TEXT NOT NULL CHECK (why = 'disposition' OR why = 'refusal'\n"
    "                                     OR why = 'reprint'),\n"
    "    state       TEXT NOT NULL DEFAULT 'queued'\n"
    "                CHECK (state = 'queued' OR state = 'submitted' OR state = 'printed'\n"
    "                       OR state = 'cancelled'),\n"
    "    created_at  TEXT NOT NULL,\n"
    "    next_at     TEXT NOT NULL,\n"
    "    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "    cups_job    INTEGER CHECK (cups_job > 0),\n"
    "    last_error  TEXT,\n"
    "    done_at     TEXT,\n"
    "    CHECK ((state = 'submitted') <= (cups_job IS NOT NULL))\n"
    ") STRICT;\n"
    "\n"
    "CREATE INDEX print_jobs_unfinished ON print_jobs (printer, id)\n"
    "    WHERE state = 'queued' OR state = 'submitted';\n"
    "CREATE INDEX print_jobs_by_station ON print_jobs (station, id);\n"
    "\n"
    "CREATE TRIGGER print_jobs_final BEFORE UPDATE ON print_jobs\n"
    "    WHEN OLD.state = 'printed' OR OLD.state = 'cancelled'\n"
    "BEGIN SELECT RAISE(ABORT, 'a finished print job is never changed'); END;\n"
    "CREATE TRIGGER print_jobs_never_deleted BEFORE DELETE ON print_jobs\n"
    "BEGIN SELECT RAISE(ABORT, 'print jobs are never deleted'); END;\n";

/*
 * The print queue becomes a durable state machine (a label is never sent twice, nor
 * taken as printed for a job that is not its own):
 * - 'submitting' is stored BEFORE a job is handed to CUPS, with the job's name
 *   (unique per label and attempt); a restart finds such a job in CUPS by that name
 *   instead of sending the label again;
 * - a submitted job is known by its job-uuid as well as its id (cupsd reuses ids);
 * - retries run on the daemon's monotonic clock: the row keeps its attempts, not a
 *   wall-clock due time (next_at goes);
 * - final failures are 'failed'; 'cancelled' is a label given up on purpose
 *   (rmactl labels cancel). Old 'cancelled' rows were final failures.
 */
static const char migration_3[] =
    "-- rmad schema 3: the print queue as a durable state machine.\n"
    "CREATE TABLE print_jobs_3 (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    receipt_id  INTEGER NOT NULL REFERENCES receipts (id),\n"
    "    station     TEXT NOT NULL,\n"
    "    printer     TEXT NOT NULL CHECK (length(printer) BETWEEN 1 AND 127),\n"
    "    why         TEXT NOT NULL CHECK (why = 'disposition' OR why = 'refusal'\n"
    "                                     OR why = 'reprint'),\n"
    "    state       TEXT NOT NULL DEFAULT 'queued'\n"
    "                CHECK (state = 'queued' OR state = 'submitting' OR state = 'submitted'\n"
    "                       OR state = 'printed' OR state = 'failed' OR state = 'cancelled'),\n"
    "    created_at  TEXT NOT NULL,\n"
    "    -- submissions started (each has its own job_name)\n"
    "    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "    job_name    TEXT CHECK (length(job_name) BETWEEN 1 AND 63),\n"
    "    cups_job    INTEGER CHECK (cups_job > 0),\n"
    "    job_uuid    TEXT,\n"
    "    last_error  TEXT,\n"
    "    done_at     TEXT,\n"
    "    CHECK ((state = 'submitting') <= (job_name IS NOT NULL)),\n"
    "    CHECK ((state = 'submitted') <= (cups_job IS NOT NULL))\n"
    ") STRICT;\n"
    "\n"
    "INSERT INTO print_jobs_3 (id, receipt_id, station, printer, why, state, created_at,\n"
    "                          attempts, cups_job, last_error, done_at)\n"
    "SELECT id, receipt_id, station, printer, why,\n"
    "       CASE state WHEN 'cancelled' THEN 'failed' ELSE state END,\n"
    "       created_at, attempts, cups_job, last_error, done_at\n"
    "FROM print_jobs;\n"
    "\n"
    "DROP TRIGGER print_jobs_final;\n"
    "DROP TRIGGER print_jobs_never_deleted;\n"
    "DROP TABLE print_jobs;\n"
    "ALTER TABLE print_jobs_3 RENAME TO print_jobs;\n"
    "\n"
    "CREATE INDEX print_jobs_unfinished ON print_jobs (printer, id)\n"
    "    WHERE state = 'queued' OR state = 'submitting' OR state = 'submitted';\n"
    "CREATE INDEX print_jobs_by_station ON print_jobs (station, id);\n"
    "\n"
    "CREATE TRIGGER print_jobs_final BEFORE UPDATE ON print_jobs\n"
    "    WHEN OLD.state = 'printed' OR OLD.state = 'failed' OR OLD.state = 'cancelled'\n"
    "BEGIN SELECT RAISE(ABORT, 'a finished print job is never changed'); END;\n"
    "CREATE TRIGGER print_jobs_never_deleted BEFORE DELETE ON print_jobs\n"
    "BEGIN SELECT RAISE(ABORT, 'print jobs are never deleted'); END;\n";

/*
 * RMAs get lines (issue 11): one RMA authorises several units, each line a product
 * (model, family, its dates and facts) with a quantity and, optionally, the serials
 * expected for it. The product facts move from rmas to rma_lines, so that there is one
 * place they live; every existing RMA becomes one line of quantity 1 with its
 * expected serial, and its receipts are units of that line.
 * - rma_serials holds one row per expected serial with its comparison key (trimmed,
 *   ASCII upper case: how the station compares serials), so the line listing a scanned
 *   serial is one indexed lookup. Uniqueness within an RMA is checked by the import;
 *   the key is unique per line only, so that a re-import can move a serial from one
 *   line to another row by row.
 * - receipts.line: the unit's line, set while the receipt is open (the serial may be
 *   what picks it), final once closed like the rest of the row.
 * - rmas.status stays open/received ("every authorised unit is in"); closed_at and
 *   closed_reason record rmactl rma close. "partially received" and "expired" are
 *   derived where shown.
 */
static const char migration_4[] =
    "-- rmad schema 4: RMA lines, quantities and expected serials.\n"
    "CREATE TABLE rma_lines (\n"
    "    rma               TEXT NOT NULL REFERENCES rmas (number) ON DELETE CASCADE,\n"
    "    line              INTEGER NOT NULL CHECK (line BETWEEN 1 AND 9999),\n"
    "    model             TEXT,\n"
    "    family            TEXT,\n"
    "    purchased         TEXT CHECK (date(purchased) IS purchased),\n"
    "    shipped           TEXT CHECK (date(shipped) IS shipped),\n"
    "    invoiced          TEXT CHECK (date(invoiced) IS invoiced),\n"
    "    warranty_months   INTEGER CHECK (warranty_months BETWEEN 0 AND 1200),\n"
    "    has_storage_media INTEGER CHECK (has_storage_media IN (0, 1)),\n"
    "    quantity          INTEGER NOT NULL DEFAULT 1 CHECK (quantity BETWEEN 1 AND 10000),\n"
    "    -- the expected serials as imported, '|'-separated; NULL when none are listed\n"
    "    serials           TEXT,\n"
    "    PRIMARY KEY (rma, line)\n"
    ") STRICT;\n"
    "\n"
    "CREATE TABLE rma_serials (\n"
    "    rma     TEXT NOT NULL,\n"
    "    line    INTEGER NOT NULL,\n"
    "    serial  TEXT NOT NULL,\n"
    "    key     TEXT NOT NULL,\n"
    "    PRIMARY KEY (rma, line, key),\n"
    "    FOREIGN KEY (rma, line) REFERENCES rma_lines (rma, line) ON DELETE CASCADE\n"
    ") STRICT;\n"
    "CREATE INDEX rma_serials_by_key ON rma_serials (rma, key);\n"
    "\n"
    "INSERT INTO rma_lines (rma, line, model, family, purchased, shipped, invoiced,\n"
    "                       warranty_months, has_storage_media, quantity, serials)\n"
    "SELECT number, 1, model, family, purchased, shipped, invoiced, warranty_months,\n"
    "       has_storage_media, 1, expected_serial\n"
    "FROM rmas;\n"
    "INSERT INTO rma_serials (rma, line, serial, key)\n"
    "SELECT number, 1, expected_serial, upper(trim(expected_serial, ' ' || char(9, 10, 11, 12, 13)))\n"
    "FROM rmas WHERE expected_serial IS NOT NULL;\n"
    "\n"
    "ALTER TABLE rmas DROP COLUMN model;\n"
    "ALTER TABLE rmas DROP COLUMN family;\n"
    "ALTER TABLE rmas DROP COLUMN expected_serial;\n"
    "ALTER TABLE rmas DROP COLUMN purchased;\n"
    "ALTER TABLE rmas DROP COLUMN shipped;\n"
    "ALTER TABLE rmas DROP COLUMN invoiced;\n"
    "ALTER TABLE rmas DROP COLUMN warranty_months;\n"
    "ALTER TABLE rmas DROP COLUMN has_storage_media;\n"
    "ALTER TABLE rmas ADD COLUMN closed_at TEXT;\n"
    "ALTER TABLE rmas ADD COLUMN closed_reason TEXT;\n"
    "\n"
    "ALTER TABLE receipts ADD COLUMN line INTEGER CHECK (line BETWEEN 1 AND 9999);\n"
    "-- Closed receipts are final: lift the rule for this one backfill only.\n"
    "DROP TRIGGER receipts_closed_are_final;\n"
    "UPDATE receipts SET line = 1\n"
    "WHERE state <> 'refused' AND rma IN (SELECT number FROM rmas);\n"
    "CREATE TRIGGER receipts_closed_are_final BEFORE UPDATE ON receipts\n"
    "    WHEN OLD.state <> 'open'\n"
    "BEGIN SELECT RAISE(ABORT, 'receipt is closed and final'); END;\n"
    "CREATE INDEX receipts_by_rma_line ON receipts (rma, line) WHERE state = 'completed';\n";

static const char migration_5[] =
    "-- rmad schema 5 (issue 13): which policy decided a receipt, so a decision can be\n"
    "-- audited after the policy file changed: the SHA-256 of the file's bytes and its\n"
    "-- optional version: field. NULL on receipts decided without a policy and on those\n"
    "-- closed before this schema (their result JSON names the file only).\n"
    "ALTER TABLE receipts ADD COLUMN policy_sha256 TEXT\n"
    "    CHECK (policy_sha256 IS NULL OR (length(policy_sha256) = 64\n"
    "                                     AND policy_sha256 NOT GLOB '*[^0-9a-f]*'));\n"
    "ALTER TABLE receipts ADD COLUMN policy_version TEXT;\n"
    "-- rmactl receipts --policy-version V.\n"
    "CREATE INDEX receipts_by_policy_version ON receipts (policy_version)\n"
    "    WHERE policy_version IS NOT NULL;\n";

/*
 * Retention (issue 15): `retain_days` deletes scans and events older than N days.
 * That is the one exception to "scans and events are never deleted", and it is made
 * explicit here: a delete passes the triggers only while the retention pass holds
 * the gate (a row in retention_gate, inserted and removed inside the pass's own
 * transaction) and only for rows older than the gate's cutoff. Even then, a scan of
 * an open receipt and the newest event (the gapless seq continues from it) stay.
 * Receipts, with their decision, are never deleted. subscriber_acks records how far
 * each subscriber named in retain_subscribers has durably taken the events
 * ({"ack_seq": N} on the replay socket); retention keeps everything after the lowest.
 */
static const char migration_6[] =
    "-- rmad schema 6: retention (retain_days) and subscribers' acknowledgements.\n"
    "CREATE TABLE subscriber_acks (\n"
    "    name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 64),\n"
    "    seq  INTEGER NOT NULL CHECK (seq >= 0),\n"
    "    at   TEXT NOT NULL\n"
    ") STRICT;\n"
    "CREATE TRIGGER subscriber_acks_forward BEFORE UPDATE ON subscriber_acks\n"
    "    WHEN NEW.seq < OLD.seq\n"
    "BEGIN SELECT RAISE(ABORT, 'an acknowledgement never goes back'); END;\n"
    "\n"
    "CREATE TABLE retention_gate (\n"
    "    id     INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    cutoff TEXT NOT NULL\n"
    ") STRICT;\n"
    "\n"
    "DROP TRIGGER scans_never_deleted;\n"
    "CREATE TRIGGER scans_never_deleted BEFORE DELETE ON scans\n"
    "    WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE OLD.at < cutoff)\n"
    "      OR OLD.receipt_id IN (SELECT id FROM receipts WHERE state = 'open')\n"
    "BEGIN SELECT RAISE(ABORT, 'scans are never deleted (only retention removes old ones)'); END;\n"
    "DROP TRIGGER outbox_never_deleted;\n"
    "CREATE TRIGGER outbox_never_deleted BEFORE DELETE ON outbox\n"
    "    WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE OLD.created_at < cutoff)\n"
    "      OR OLD.seq = (SELECT max(seq) FROM outbox)\n"
    "BEGIN SELECT RAISE(ABORT, 'events are never deleted (only retention removes old ones)'); END;\n";

static const char migration_7[] =
    "-- rmad schema 7 (issue 18): how far each forwarder got, its own durable cursor.\n"
    "-- seq: every event up to it is acknowledged by the sink (the JetStream ack);\n"
    "-- updated_ms: when it last moved (Unix ms), which tells the forwarder whether the\n"
    "-- unacknowledged tail is still inside the stream's duplicate window.\n"
    "CREATE TABLE forward_marks (\n"
    "    sink        TEXT PRIMARY KEY NOT NULL,\n"
    "    seq         INTEGER NOT NULL CHECK (seq >= 0),\n"
    "    updated_ms  INTEGER NOT NULL\n"
    ") STRICT;\n"
    "-- A mark only moves forward: an ack is never taken back.\n"
    "CREATE TRIGGER forward_marks_only_forward BEFORE UPDATE OF seq ON forward_marks\n"
    "    WHEN NEW.seq < OLD.seq\n"
    "BEGIN SELECT RAISE(ABORT, 'forward mark moves forward only'); END;\n";

/*
 * Issue 17: a smaller transaction per scan. AUTOINCREMENT made every insert into
 * receipts and scans rewrite sqlite_sequence (one more WAL page per scan). An INTEGER
 * PRIMARY KEY gives max(id) + 1, which is the same guarantee (an id is never reused)
 * as long as the row holding the largest id is never deleted:
 * - receipts are never deleted at all (receipts_never_deleted, unchanged);
 * - scans are deleted only by retention through the gate of schema 6, with the same
 *   conditions as before, and now also never the newest scan (the ids go on from it),
 *   as the newest event already stays for the outbox's seq.
 * SQLite cannot drop AUTOINCREMENT in place: both tables are rebuilt, every row copied
 * with its id, columns in the same order, the same CHECKs, indexes and triggers. The
 * migration runs with foreign keys off (db_open turns them on after migrating) and is
 * checked with PRAGMA foreign_key_check before it commits.
 */
static const char migration_8[] =
    "-- rmad schema 8: receipts and scans without AUTOINCREMENT.\n"
    "CREATE TABLE receipts_7 (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    station     TEXT NOT NULL,\n"
    "    rma         TEXT,\n"
    "    state       TEXT NOT NULL CHECK (state = 'open' OR state = 'completed'\n"
    "                                     OR state = 'cancelled' OR state = 'refused'),\n"
    "    opened_at   TEXT NOT NULL,\n"
    "    closed_at   TEXT,\n"
    "    serial      TEXT,\n"
    "    checklist   TEXT CHECK (checklist IS NULL OR json_valid(checklist)),\n"
    "    result      TEXT CHECK (result IS NULL OR json_valid(result)),\n"
    "    disposition TEXT,\n"
    "    reason      TEXT,\n"
    "    line        INTEGER CHECK (line BETWEEN 1 AND 9999),\n"
    "    policy_sha256 TEXT\n"
    "        CHECK (policy_sha256 IS NULL OR (length(policy_sha256) = 64\n"
    "                                         AND policy_sha256 NOT GLOB '*[^0-9a-f]*')),\n"
    "    policy_version TEXT,\n"
    "    CHECK ((state = 'open') = (closed_at IS NULL)),\n"
    "    CHECK (state <> 'completed' OR disposition IS NOT NULL)\n"
    ") STRICT;\n"
    "INSERT INTO receipts_7 (id, station, rma, state, opened_at, closed_at, serial, checklist,\n"
    "                        result, disposition, reason, line, policy_sha256, policy_version)\n"
    "SELECT id, station, rma, state, opened_at, closed_at, serial, checklist, result,\n"
    "       disposition, reason, line, policy_sha256, policy_version\n"
    "FROM receipts ORDER BY id;\n"
    "\n"
    "CREATE TABLE scans_7 (\n"
    "    id         INTEGER PRIMARY KEY,\n"
    "    at         TEXT NOT NULL,\n"
    "    station    TEXT NOT NULL,\n"
    "    scanner    TEXT NOT NULL,\n"
    "    symbology  TEXT,\n"
    "    raw        BLOB NOT NULL,\n"
    "    text       TEXT,\n"
    "    kind       TEXT NOT NULL,\n"
    "    accepted   INTEGER NOT NULL CHECK (accepted IN (0, 1)),\n"
    "    reason     TEXT,\n"
    "    receipt_id INTEGER REFERENCES receipts (id),\n"
    "    CHECK (accepted = 1 OR reason IS NOT NULL)\n"
    ") STRICT;\n"
    "INSERT INTO scans_7 (id, at, station, scanner, symbology, raw, text, kind, accepted,\n"
    "                     reason, receipt_id)\n"
    "SELECT id, at, station, scanner, symbology, raw, text, kind, accepted, reason, receipt_id\n"
    "FROM scans ORDER BY id;\n"
    "\n"
    "-- Their indexes and triggers go with them.\n"
    "DROP TABLE scans;\n"
    "DROP TABLE receipts;\n"
    "ALTER TABLE receipts_7 RENAME TO receipts;\n"
    "ALTER TABLE scans_7 RENAME TO scans;\n"
    "\n"
    "CREATE UNIQUE INDEX receipts_open_per_station ON receipts (station) WHERE state = 'open';\n"
    "CREATE INDEX receipts_by_time ON receipts (opened_at);\n"
    "CREATE INDEX receipts_by_rma ON receipts (rma) WHERE rma IS NOT NULL;\n"
    "CREATE INDEX receipts_by_rma_line ON receipts (rma, line) WHERE state = 'completed';\n"
    "CREATE INDEX receipts_by_policy_version ON receipts (policy_version)\n"
    "    WHERE policy_version IS NOT NULL;\n"
    "CREATE TRIGGER receipts_closed_are_final BEFORE UPDATE ON receipts\n"
    "    WHEN OLD.state <> 'open'\n"
    "BEGIN SELECT RAISE(ABORT, 'receipt is closed and final'); END;\n"
    "CREATE TRIGGER receipts_keep_identity BEFORE UPDATE ON receipts\n"
    "    WHEN NEW.id IS NOT OLD.id OR NEW.station IS NOT OLD.station\n"
    "      OR NEW.rma IS NOT OLD.rma OR NEW.opened_at IS NOT OLD.opened_at\n"
    "BEGIN SELECT RAISE(ABORT, 'receipt id, station, rma and opened_at never change'); END;\n"
    "CREATE TRIGGER receipts_never_deleted BEFORE DELETE ON receipts\n"
    "BEGIN SELECT RAISE(ABORT, 'receipts are never deleted'); END;\n"
    "\n"
    "CREATE INDEX scans_by_receipt ON scans (receipt_id) WHERE receipt_id IS NOT NULL;\n"
    "CREATE INDEX scans_by_time ON scans (at);\n"
    "CREATE TRIGGER scans_are_final BEFORE UPDATE ON scans\n"
    "BEGIN SELECT RAISE(ABORT, 'scans are never changed'); END;\n"
    "CREATE TRIGGER scans_never_deleted BEFORE DELETE ON scans\n"
    "    WHEN NOT EXISTS (SELECT 1 FROM retention_gate WHERE OLD.at < cutoff)\n"
    "      OR OLD.receipt_id IN (SELECT id FROM receipts WHERE state = 'open')\n"
    "      OR OLD.id = (SELECT max(id) FROM scans)\n"
    "BEGIN SELECT RAISE(ABORT, 'scans are never deleted (only retention removes old ones)'); END;\n";

const char *const db_migrations[] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
    migration_6,
    migration_7,
    migration_8,
};

const int db_migrations_count = (int)(sizeof(db_migrations) / sizeof(db_migrations[0]));
