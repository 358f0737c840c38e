/*
 * Group commit (issue 17): daemon/intake.h, daemon/txn.h and daemon/dispatch.h on a
 * real SQLite file with the shipped policies and three stations. The failures are
 * SQLite's own: a trigger that raises inside one read's savepoint, a deferred foreign
 * key that fails the COMMIT, another connection that holds the write lock.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caldate.h"
#include "core/config.h"
#include "core/loop.h"
#include "daemon/dispatch.h"
#include "daemon/intake.h"
#include "daemon/station.h"
#include "daemon/txn.h"
#include "db/db.h"
#include "policy/policyset.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define NST 3

typedef struct {
    int rc;
    size_t station;
    char text[64];
    char reply[256];
    uint64_t seq;
} done_t;

typedef struct {
    char *dbfile;
    db_t *db;
    config_t *cfg;
    policyset_t *ps;
    station_t *st[NST];
    loop_t *loop;
    dispatch_t *dp;
    txn_t *txn;
    intake_t *in;
    json_t *events;          /* what the PUB sink was handed, parsed */
    done_t done[64];
    size_t ndone, want;
    int busy_calls, free_calls;
    int holds, releases;
    size_t waiting_at_hold;
} fx_t;

static int pub_sink(const dispatch_event_t *ev, void *data)
{
    fx_t *f = data;
    json_t *j = json_loadb(ev->body, ev->len, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "seq")), (json_int_t)ev->seq);
    json_array_append_new(f->events, j);
    return 0;
}

static void read_done(size_t station, const scanq_item_t *it, int rc, const station_outcome_t *out,
                      uint64_t seq, void *data)
{
    fx_t *f = data;
    if (f->ndone == 64)
        f->ndone = 32;            /* a long run keeps the last ones */
    done_t *d = &f->done[f->ndone++];
    *d = (done_t){ .rc = rc, .station = station, .seq = seq };
    snprintf(d->text, sizeof(d->text), "%s", it->rejected ? "(rejected)" : it->scan.text);
    if (out)
        snprintf(d->reply, sizeof(d->reply), "%s", out->reply);
    if (f->ndone == f->want)
        loop_stop(f->loop);
}

static void on_busy(bool busy, int64_t waited_ms, void *data)
{
    fx_t *f = data;
    (void)waited_ms;
    if (busy)
        f->busy_calls++;
    else
        f->free_calls++;
}

static void on_hold(size_t station, bool hold, void *data)
{
    fx_t *f = data;
    CU_ASSERT_EQUAL(station, 2);
    if (hold) {
        f->holds++;
        f->waiting_at_hold = intake_waiting(f->in);
    } else {
        f->releases++;
    }
}

static char *day(int offset)
{
    static char buf[8][CALDATE_STRLEN];
    static int i;
    char *b = buf[i++ % 8];
    caldate_format(caldate_today() + offset, b);
    return b;
}

static void fx_open(fx_t *f)
{
    char cwd[4096], *conf, *csv, *err = NULL;
    memset(f, 0, sizeof(*f));
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_FATAL(asprintf(&f->dbfile, "%s/intake.db", th_tmpdb_dir()) > 0);
    (void)unlink(f->dbfile);
    CU_ASSERT_FATAL(asprintf(&conf,
                             "[daemon]\ndatabase = %s\npolicies = policies\n"
                             "pub = tcp://127.0.0.1:17881\nreplay = tcp://127.0.0.1:17882\n"
                             "control = ipc://%s/rmad.ctl\n\n"
                             "[station dock1]\nscanner = tcp:127.0.0.1:17891\n"
                             "[station dock2]\nscanner = tcp:127.0.0.1:17892\n"
                             "[station dock3]\nscanner = tcp:127.0.0.1:17893\n",
                             f->dbfile, th_tmpdb_dir()) > 0);
    CU_ASSERT_EQUAL_FATAL(config_parse(conf, strlen(conf), "test.conf", cwd, &f->cfg, &err), 0);
    free(conf);
    CU_ASSERT_EQUAL_FATAL(db_open(f->cfg->database, &f->db, &err), 0);
    CU_ASSERT_EQUAL_FATAL(db_set_busy_timeout(f->db, 20), 0);
    CU_ASSERT_EQUAL_FATAL(policyset_load(f->cfg->policies, &f->ps, &err), 0);
    CU_ASSERT_FATAL(asprintf(&csv,
                             "number,issued,kind,vendor,model,family,expected_serial,purchased\n"
                             "RMA-V7001,%s,warranty,V7,,Solid State Drives,SN-V7-001,%s\n"
                             "RMA-V7002,%s,warranty,V7,,Solid State Drives,SN-V7-002,%s\n"
                             "RMA-V7003,%s,warranty,V7,,Solid State Drives,SN-V7-003,%s\n",
                             day(-5), day(-100), day(-5), day(-100), day(-5), day(-100)) > 0);
    db_import_report_t rep = { 0 };
    CU_ASSERT_EQUAL_FATAL(db_rma_import_csv(f->db, csv, strlen(csv), NULL, &rep, &err), 0);
    db_import_report_clear(&rep);
    free(csv);
    for (int i = 0; i < NST; i++) {
        f->st[i] = station_new(&f->cfg->stations[i], f->cfg, f->db, &f->ps, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->st[i]);
    }
    f->events = json_array();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->loop = loop_new());
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->dp = dispatch_new(f->loop, f->db, &err));
    CU_ASSERT_EQUAL_FATAL(dispatch_add_sink(f->dp, "pub", pub_sink, f, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->txn = txn_new(f->db, f->dp));
    f->in = intake_new(f->loop, f->txn, f->st, NST, read_done, on_busy, on_hold, f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->in);
    /* Only the count caps a batch here: a slow machine (valgrind) must not split them. */
    CU_ASSERT_EQUAL_FATAL(intake_set_limits(f->in, INTAKE_BATCH_MAX, 600000), 0);
}

static void fx_close(fx_t *f)
{
    intake_destroy(&f->in);
    txn_destroy(&f->txn);
    dispatch_destroy(&f->dp);
    for (int i = 0; i < NST; i++)
        station_destroy(&f->st[i]);
    loop_destroy(&f->loop);
    policyset_destroy(&f->ps);
    db_close(&f->db);
    config_destroy(&f->cfg);
    json_decref(f->events);
    free(f->dbfile);
}

/* SQL on a second connection (the test's hand in the schema, or another process). */
static void other_sql(fx_t *f, const char *sql)
{
    sqlite3 *o = NULL;
    char *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(f->dbfile, &o), SQLITE_OK);
    int rc = sqlite3_exec(o, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  %s: %s\n", sql, msg);
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
    sqlite3_free(msg);
    sqlite3_close(o);
}

static long count(fx_t *f, const char *sql)
{
    sqlite3 *o = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(f->dbfile, &o), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(o, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(o);
    return n;
}

static void push(fx_t *f, size_t station, const char *text)
{
    static int64_t t = 1000;
    scan_t s = { .text = (char *)text, .len = strlen(text), .raw = (uint8_t *)text,
                 .raw_len = strlen(text), .symbology = "unknown", .scanner = "test#1",
                 .t_ms = (t += 5000) };
    CU_ASSERT_EQUAL(intake_push(f->in, station, &s, "test#1", NULL, 0, NULL, NULL), 0);
}

static void run_until(fx_t *f, size_t want)
{
    f->want = want;
    CU_ASSERT_EQUAL(th_loop_run_stopped(f->loop, 5000), 1);
}

/* How many published events name this station. */
static int events_of(fx_t *f, const char *station)
{
    size_t i;
    json_t *ev;
    int n = 0;
    json_array_foreach(f->events, i, ev) {
        const char *s = json_string_value(json_object_get(ev, "station"));
        if (s && strcmp(s, station) == 0)
            n++;
    }
    return n;
}

/* The outbox is gapless and everything in it was published, in order. */
static void assert_published_all(fx_t *f)
{
    long n = count(f, "SELECT count(*) FROM outbox");
    CU_ASSERT_EQUAL(count(f, "SELECT coalesce(max(seq), 0) FROM outbox"), n);
    CU_ASSERT_EQUAL((long)json_array_size(f->events), n);
    size_t i;
    json_t *ev;
    json_array_foreach(f->events, i, ev)
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "seq")), (json_int_t)i + 1);
}

/* Ready reads at three stations: one transaction, three stored, events after it. */
static void test_one_transaction_for_all(void)
{
    fx_t f;
    fx_open(&f);
    push(&f, 0, "RMA-V7001");
    push(&f, 1, "RMA-V7002");
    push(&f, 2, "RMA-V7003");
    CU_ASSERT_EQUAL(intake_waiting(f.in), 3);
    CU_ASSERT_EQUAL(json_array_size(f.events), 0);   /* nothing before the batch commits */
    run_until(&f, 3);
    intake_stats_t s;
    intake_stats(f.in, &s);
    CU_ASSERT_EQUAL(s.batches, 1);
    CU_ASSERT_EQUAL(s.reads, 3);
    CU_ASSERT_EQUAL(s.largest, 3);
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(f.done[i].rc, 0);
        CU_ASSERT(f.done[i].seq > 0);
        ASSERT_CONTAINS(f.done[i].reply, "opened");
        station_status_t ss;
        station_status(f.st[f.done[i].station], &ss);
        CU_ASSERT(ss.receipt_id > 0);
    }
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM scans"), 3);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM receipts WHERE state = 'open'"), 3);
    assert_published_all(&f);
    CU_ASSERT_EQUAL(intake_waiting(f.in), 0);

    /* A station's reads build on each other: two at one station go in two batches. */
    push(&f, 0, "SN-V7-001");
    push(&f, 0, "CMD-CANCEL");
    run_until(&f, 5);
    intake_stats(f.in, &s);
    CU_ASSERT_EQUAL(s.batches, 3);
    CU_ASSERT_EQUAL(f.done[3].rc, 0);
    CU_ASSERT_EQUAL(f.done[4].rc, 0);
    ASSERT_CONTAINS(f.done[4].reply, "cancelled");
    assert_published_all(&f);
    fx_close(&f);
}

/* A batch holds at most max_reads reads; the rest go in the next one, in station order. */
static void test_batch_cap(void)
{
    fx_t f;
    fx_open(&f);
    CU_ASSERT_EQUAL(intake_set_limits(f.in, 0, 5), -EINVAL);
    CU_ASSERT_EQUAL(intake_set_limits(f.in, INTAKE_BATCH_MAX + 1, 5), -EINVAL);
    CU_ASSERT_EQUAL(intake_set_limits(f.in, 2, 600000), 0);
    push(&f, 0, "RMA-V7001");
    push(&f, 1, "RMA-V7002");
    push(&f, 2, "RMA-V7003");
    run_until(&f, 3);
    intake_stats_t s;
    intake_stats(f.in, &s);
    CU_ASSERT_EQUAL(s.batches, 2);
    CU_ASSERT_EQUAL(s.largest, 2);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(f.done[i].rc, 0);
    assert_published_all(&f);
    fx_close(&f);
}

/* One read whose statements fail rolls back alone; the others of its batch commit. */
static void test_failing_read_alone(void)
{
    fx_t f;
    fx_open(&f);
    /* The receipt row is written before the scan row: the savepoint must undo both. */
    other_sql(&f, "CREATE TRIGGER boom BEFORE INSERT ON scans WHEN NEW.text = 'RMA-V7002' "
                  "BEGIN SELECT RAISE(ABORT, 'no room for this scan'); END");
    push(&f, 0, "RMA-V7001");
    push(&f, 1, "RMA-V7002");
    push(&f, 2, "RMA-V7003");
    run_until(&f, 3);
    intake_stats_t s;
    intake_stats(f.in, &s);
    CU_ASSERT_EQUAL(s.batches, 1);
    CU_ASSERT_EQUAL(s.reads, 2);
    int stored = 0, refused = 0;
    for (size_t i = 0; i < 3; i++) {
        if (f.done[i].station == 1) {
            CU_ASSERT(f.done[i].rc < 0);
            refused++;
        } else {
            CU_ASSERT_EQUAL(f.done[i].rc, 0);
            stored++;
        }
    }
    CU_ASSERT_EQUAL(stored, 2);
    CU_ASSERT_EQUAL(refused, 1);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM scans"), 2);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM receipts WHERE station = 'dock2'"), 0);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM receipts"), 2);
    CU_ASSERT_EQUAL(events_of(&f, "dock2"), 0);
    CU_ASSERT(events_of(&f, "dock1") > 0);
    CU_ASSERT(events_of(&f, "dock3") > 0);
    station_status_t ss;
    station_status(f.st[1], &ss);
    CU_ASSERT_EQUAL(ss.receipt_id, 0);
    CU_ASSERT_EQUAL(ss.scans, 0);
    assert_published_all(&f);   /* the rolled-back read gave its seqs back: no gap */

    /* The cause gone, the same read is stored (not taken for a double read). */
    other_sql(&f, "DROP TRIGGER boom");
    push(&f, 1, "RMA-V7002");
    run_until(&f, 4);
    CU_ASSERT_EQUAL(f.done[3].rc, 0);
    station_status(f.st[1], &ss);
    CU_ASSERT(ss.receipt_id > 0);
    assert_published_all(&f);
    fx_close(&f);
}

/* A COMMIT that fails: no event published, no station changed, every read told. */
static void test_failed_commit(void)
{
    fx_t f;
    fx_open(&f);
    push(&f, 0, "RMA-V7001");
    run_until(&f, 1);
    size_t before = json_array_size(f.events);
    long scans = count(&f, "SELECT count(*) FROM scans");
    station_status_t ss0;
    station_status(f.st[0], &ss0);
    /* A deferred foreign key is checked at COMMIT only: the statements all succeed. */
    other_sql(&f, "CREATE TABLE commit_guard (r INTEGER REFERENCES receipts (id) "
                  "DEFERRABLE INITIALLY DEFERRED);"
                  "CREATE TRIGGER guard AFTER INSERT ON scans WHEN NEW.text = 'RMA-V7002' "
                  "BEGIN INSERT INTO commit_guard VALUES (999999); END");
    push(&f, 0, "SN-V7-001");
    push(&f, 1, "RMA-V7002");
    push(&f, 2, "RMA-V7003");
    run_until(&f, 4);
    for (size_t i = 1; i < 4; i++)
        CU_ASSERT_EQUAL(f.done[i].rc, -ENOENT);   /* the foreign key, at COMMIT */
    CU_ASSERT_EQUAL(json_array_size(f.events), before);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM scans"), scans);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM receipts"), 1);
    station_status_t ss;
    station_status(f.st[0], &ss);
    CU_ASSERT_EQUAL(ss.receipt_id, ss0.receipt_id);
    CU_ASSERT_EQUAL(ss.scans, ss0.scans);
    CU_ASSERT_PTR_NULL(ss.serial);
    station_status(f.st[1], &ss);
    CU_ASSERT_EQUAL(ss.receipt_id, 0);
    station_status(f.st[2], &ss);
    CU_ASSERT_EQUAL(ss.receipt_id, 0);
    assert_published_all(&f);

    other_sql(&f, "DROP TRIGGER guard");
    push(&f, 0, "SN-V7-001");
    push(&f, 1, "RMA-V7002");
    run_until(&f, 6);
    CU_ASSERT_EQUAL(f.done[4].rc, 0);
    CU_ASSERT_EQUAL(f.done[5].rc, 0);
    station_status(f.st[0], &ss);
    ASSERT_STR(ss.serial, "SN-V7-001");
    assert_published_all(&f);
    fx_close(&f);
}

/* Another process holds the write lock: reads wait in order, then are stored. */
static void test_busy_waits(void)
{
    fx_t f;
    fx_open(&f);
    sqlite3 *o = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(f.dbfile, &o), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(o, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    push(&f, 0, "RMA-V7001");
    push(&f, 0, "SN-V7-001");
    push(&f, 1, "RMA-V7002");
    th_loop_run_for(f.loop, 4 * SCANQ_RETRY_MS);
    CU_ASSERT_EQUAL(f.ndone, 0);
    CU_ASSERT_EQUAL(f.busy_calls, 1);
    CU_ASSERT_EQUAL(intake_waiting(f.in), 3);
    CU_ASSERT_EQUAL(sqlite3_exec(o, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(o);
    run_until(&f, 3);
    CU_ASSERT_EQUAL(f.free_calls, 1);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(f.done[i].rc, 0);
    /* dock1's two reads in the order they were read. */
    size_t a = f.done[0].station == 0 ? 0 : 1;
    ASSERT_STR(f.done[a].text, "RMA-V7001");
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM scans"), 3);
    assert_published_all(&f);
    fx_close(&f);
}

/* A burst at one station: its scanners are held past INTAKE_HOLD_AT, released once it drains. */
static void test_burst_holds(void)
{
    fx_t f;
    fx_open(&f);
    size_t n = INTAKE_HOLD_AT + 20;
    char text[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(text, sizeof(text), "TOTE-%04zu", i);
        push(&f, 2, text);
    }
    CU_ASSERT_EQUAL(f.holds, 1);
    CU_ASSERT_EQUAL(f.waiting_at_hold, INTAKE_HOLD_AT);
    CU_ASSERT_EQUAL(f.releases, 0);
    f.want = (size_t)-1;
    for (int k = 0; k < 200 && intake_waiting(f.in) > 0; k++)
        th_loop_run_for(f.loop, 20);
    CU_ASSERT_EQUAL(intake_waiting(f.in), 0);
    CU_ASSERT_EQUAL(f.releases, 1);
    CU_ASSERT_EQUAL(count(&f, "SELECT count(*) FROM scans WHERE station = 'dock3'"), (long)n);
    assert_published_all(&f);
    fx_close(&f);
}

/*
 * Events committed but never handed to PUB (the daemon died between COMMIT and
 * publish) are published at the next start, from the stored cursor, in order.
 */
static void test_cursor_survives(void)
{
    fx_t f;
    fx_open(&f);
    push(&f, 0, "RMA-V7001");
    run_until(&f, 1);
    uint64_t published = dispatch_cursor(f.dp, "pub");
    CU_ASSERT(published > 0);
    CU_ASSERT_EQUAL(published, dispatch_committed_seq(f.dp));
    CU_ASSERT_EQUAL(dispatch_save(f.dp), 0);
    /* A crash after COMMIT: a txn whose events reach no dispatcher. */
    txn_t *lost = txn_new(f.db, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lost);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(txn_begin(lost), 0);
        CU_ASSERT_EQUAL(txn_event(lost, "daemon.started", NULL, NULL, 0, 1700000000000), 0);
        CU_ASSERT_EQUAL(txn_commit(lost), 0);
    }
    txn_destroy(&lost);
    size_t had = json_array_size(f.events);
    dispatch_t *again = dispatch_new(f.loop, f.db, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    uint64_t backlog = 0;
    CU_ASSERT_EQUAL(dispatch_add_sink(again, "pub", pub_sink, &f, &backlog), 0);
    CU_ASSERT_EQUAL(backlog, 3);
    th_loop_run_for(f.loop, 50);
    CU_ASSERT_EQUAL(json_array_size(f.events), had + 3);
    CU_ASSERT_EQUAL(dispatch_cursor(again, "pub"), published + 3);
    assert_published_all(&f);
    /* A sink never stored starts now: it is not sent the history. */
    CU_ASSERT_EQUAL(dispatch_add_sink(again, "new", pub_sink, &f, &backlog), 0);
    CU_ASSERT_EQUAL(backlog, 0);
    dispatch_destroy(&again);
    fx_close(&f);
}

int suite_intake(void)
{
    CU_pSuite s = CU_add_suite("intake", th_tmpdb_setup, th_tmpdb_teardown);
    if (!s ||
        !CU_add_test(s, "ready reads of all stations: one transaction", test_one_transaction_for_all) ||
        !CU_add_test(s, "a batch holds at most max_reads reads", test_batch_cap) ||
        !CU_add_test(s, "a failing read rolls back alone, the batch commits", test_failing_read_alone) ||
        !CU_add_test(s, "a failed COMMIT publishes nothing, changes no station", test_failed_commit) ||
        !CU_add_test(s, "a locked database: reads wait in order", test_busy_waits) ||
        !CU_add_test(s, "a burst holds the station's scanners until it drains", test_burst_holds) ||
        !CU_add_test(s, "the PUB cursor: what was committed is published after a crash",
                     test_cursor_survives))
        return -1;
    return 0;
}
