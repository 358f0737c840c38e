/*
 * station: the receipt workflow of spec station, end to end on real parts: a SQLite
 * file in a temp dir, the shipped policies/ directory, RMAs imported from CSV, scans
 * decoded from raw bytes by scan_decode, and the events as they would be published
 * (the outbox flushed after each scan). What is on disk is checked with an
 * independent sqlite3 connection; inspection.completed is checked against
 * result_to_json() of a case this file writes itself.
 *
 * Also the policies directory as a set (policy/policyset.h).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caldate.h"
#include "core/config.h"
#include "daemon/outbox.h"
#include "policy/policyset.h"
#include "daemon/station.h"
#include "db/db.h"
#include "drivers/scan.h"
#include "proto/event.h"
#include "proto/labelcode.h"
#include "proto/policy_json.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define SCANNER "tcp:127.0.0.1:7790#1"
#define GS "\x1d"

static char *tmpdir;
static int db_counter;
/* The fixture station's printer line ("printer = zebra"), "" for none. */
static const char *fx_printer = "printer = zebra";

static int setup(void)
{
    tmpdir = th_mkdtemp();
    return tmpdir ? 0 : -1;
}

static int teardown(void)
{
    th_rm_rf(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
    return 0;
}

/* "YYYY-MM-DD" of today + offset days: RMAs are dated relative to the receiving day,
 * which the station takes from the clock (caldate_today). */
static const char *day(int offset)
{
    static char buf[16][CALDATE_STRLEN];   /* one call's arguments may hold 14 */
    static int i;
    char *b = buf[i++ % 16];
    caldate_format(caldate_today() + offset, b);
    return b;
}

/* --------------------------------------------------------------- fixture ------- */

typedef struct {
    char *dbfile;
    db_t *db;
    config_t *cfg;
    policyset_t *ps;
    station_t *st;
    outbox_t *ob;
    int64_t now;     /* wall clock, ms */
    int64_t mono;    /* the drivers' monotonic clock, ms */
    json_t *events;  /* every event published, parsed, in order */
} fx_t;

static int sink(const char *topic, const char *body, size_t len, void *data)
{
    fx_t *f = data;
    json_error_t je;
    json_t *ev = json_loadb(body, len, 0, &je);
    CU_ASSERT_PTR_NOT_NULL(ev);
    if (!ev)
        return -EINVAL;
    ASSERT_STR(json_string_value(json_object_get(ev, "type")), topic);
    json_array_append_new(f->events, ev);
    return 0;
}

static void fx_start_station(fx_t *f)
{
    char *err = NULL;
    f->st = station_new(&f->cfg->stations[0], f->cfg, f->db, &f->ps, &err);
    if (!f->st)
        fprintf(stderr, "\n  station_new: %s\n", err ? err : "(null)");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->st);
    CU_ASSERT_PTR_NULL(err);
    free(err);
}

/* The RMAs every test starts with; dates are filled in relative to today. */
#define RMAS_CSV \
    "number,issued,kind,vendor,model,family,expected_serial,purchased,shipped,warranty_months\n" \
    "RMA-V7001,%s,warranty,V7,,Solid State Drives,SN-V7-001,%s,,\n" \
    "RMA-V7002,%s,warranty,V7,,Solid State Drives,SN-V7-002,%s,,\n" \
    "RMA-V7RCV,%s,warranty,V7,,Solid State Drives,SN-V7-009,%s,,\n" \
    "RMA-EF001,%s,credit,EverFocus,EN-220,Monitors,EF-SN-1,%s,%s,\n" \
    "RMA-EFOLD,%s,warranty,EverFocus,EPN4208,Recorders,EF-SN-2,%s,%s,24\n" \
    "RMA-ACME1,%s,warranty,Acme,AC-1,Remotes,AC-SN-1,%s,,\n" \
    "RMA-EFCAM,%s,credit,EverFocus,EZN268,IP Cameras,EF-CAM-1,%s,%s,\n"

/*
 * A fresh database with these RMAs (today-relative), the policies of `policies`
 * (NULL: the shipped policies/ directory) and station dock1.
 */
static void fx_open_with(fx_t *f, const char *policies)
{
    char cwd[4096], *conf, *csv, *err = NULL;

    memset(f, 0, sizeof(*f));
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_FATAL(asprintf(&f->dbfile, "%s/st%d.db", tmpdir, ++db_counter) > 0);
    CU_ASSERT_FATAL(asprintf(&conf,
                             "[daemon]\n"
                             "database = %s\n"
                             "policies = %s\n"
                             "pub = tcp://127.0.0.1:17781\n"
                             "replay = tcp://127.0.0.1:17782\n"
                             "control = ipc://%s/rmad.ctl\n"
                             "double_read_ms = 1500\n"
                             "\n"
                             "[station dock1]\n"
                             "scanner = tcp:127.0.0.1:17790\n"
                             "%s\n",
                             f->dbfile, policies ? policies : "policies", tmpdir,
                             fx_printer ? fx_printer : "") > 0);
    CU_ASSERT_EQUAL_FATAL(config_parse(conf, strlen(conf), "test.conf", cwd, &f->cfg, &err), 0);
    free(conf);
    CU_ASSERT_EQUAL_FATAL(db_open(f->cfg->database, &f->db, &err), 0);
    CU_ASSERT_EQUAL_FATAL(policyset_load(f->cfg->policies, &f->ps, &err), 0);

    CU_ASSERT_FATAL(asprintf(&csv, RMAS_CSV, day(-5), day(-100), day(-5), day(-100), day(-5),
                             day(-100), day(-2), day(-10), day(-9), day(-60), day(-90),
                             day(-88), day(-3), day(-30), day(-3), day(-20), day(-20)) > 0);
    db_import_report_t rep = { 0 };
    int r = db_rma_import_csv(f->db, csv, strlen(csv), NULL, &rep, &err);
    if (r < 0)
        fprintf(stderr, "\n  import: %s\n", err ? err : "(null)");
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL(rep.inserted, 7);
    db_import_report_clear(&rep);
    free(csv);
    CU_ASSERT_EQUAL(db_rma_mark_received(f->db, "RMA-V7RCV"), 0);

    f->ob = outbox_new();
    f->events = json_array();
    f->now = (int64_t)caldate_today() * 86400000 + 9 * 3600000;
    f->mono = 1000000;
    fx_start_station(f);
}

static void fx_open(fx_t *f)
{
    fx_open_with(f, NULL);
}

static void fx_close(fx_t *f)
{
    station_destroy(&f->st);
    CU_ASSERT_PTR_NULL(f->st);
    station_destroy(&f->st);   /* NULL is fine */
    outbox_destroy(&f->ob);
    policyset_destroy(&f->ps);
    db_close(&f->db);
    config_destroy(&f->cfg);
    json_decref(f->events);
    free(f->dbfile);
    memset(f, 0, sizeof(*f));
}

/* Apply raw bytes read by `scanner` at monotonic time mono; the outbox is flushed
 * into f->events when the call succeeds. Returns station_apply_scan's result. */
static int scan_raw(fx_t *f, const char *scanner, const void *raw, size_t len, int64_t mono,
                    station_outcome_t *out)
{
    scan_t s = { 0 };
    const char *why = NULL;
    int r = scan_decode(raw, len, NULL, &s, &why);
    if (r < 0)
        fprintf(stderr, "\n  scan_decode: %s\n", why ? why : "?");
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL_FATAL(scan_set_source(&s, scanner, mono), 0);
    f->now += 1000;
    r = station_apply_scan(f->st, &s, f->now, f->ob, out);
    if (r == 0)
        CU_ASSERT_EQUAL(outbox_flush(f->ob, sink, f), 0);
    CU_ASSERT_EQUAL(outbox_pending(f->ob), 0);
    scan_clear(&s);
    return r;
}

/* One scan of text, well apart from the previous one (no double read). */
static station_outcome_t sc(fx_t *f, const char *text)
{
    station_outcome_t out;
    memset(&out, 0xa5, sizeof(out));
    f->mono += 5000;
    CU_ASSERT_EQUAL(scan_raw(f, SCANNER, text, strlen(text), f->mono, &out), 0);
    return out;
}

static size_t n_events(fx_t *f)
{
    return json_array_size(f->events);
}

static json_t *event(fx_t *f, size_t i)
{
    return json_array_get(f->events, i);
}

static json_t *last_event(fx_t *f, const char *topic)
{
    for (size_t i = n_events(f); i-- > 0;)
        if (strcmp(json_string_value(json_object_get(event(f, i), "type")), topic) == 0)
            return event(f, i);
    return NULL;
}

static const char *ev_str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

/* One integer from SQL on an independent connection; -1 on failure. */
static long long q_int(fx_t *f, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(f->dbfile, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "\n  q_int(%s): %s\n", sql, sqlite3_errmsg(c));
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

/* One text from SQL on an independent connection; malloc'd or NULL. */
static char *q_text(fx_t *f, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(f->dbfile, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static void exec_sql(fx_t *f, const char *sql)
{
    sqlite3 *c = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL(sqlite3_open(f->dbfile, &c), SQLITE_OK);
    int rc = sqlite3_exec(c, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  exec(%s): %s\n", sql, err ? err : "?");
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
    sqlite3_free(err);
    sqlite3_close(c);
}

/*
 * The events' envelopes: seq 1, 2, 3 ... with no gap (spec events), version 1, the
 * station's name, and the stored outbox holding exactly the published bodies.
 */
static void check_envelopes(fx_t *f)
{
    size_t n = n_events(f);
    for (size_t i = 0; i < n; i++) {
        json_t *ev = event(f, i);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "seq")), (json_int_t)i + 1);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "v")), 1);
        ASSERT_STR(ev_str(ev, "station"), "dock1");
        CU_ASSERT_EQUAL(strlen(ev_str(ev, "time")), EVENT_TIME_STRLEN - 1);
    }
    CU_ASSERT_EQUAL(q_int(f, "SELECT count(*) FROM outbox"), (long long)n);
    CU_ASSERT_EQUAL(q_int(f, "SELECT coalesce(max(seq), 0) FROM outbox"), (long long)n);
}

/*
 * Evaluate `case_text` (a case this test writes from the RMA it imported and the scans
 * it made) with the set's policy for `vendor`, as `rmactl policy eval` would, and
 * check inspection.completed carries every result field with the same value.
 */
static void check_result_fields(fx_t *f, json_t *ev, const char *vendor, const char *case_text)
{
    const policy_t *p = policyset_for_vendor(f->ps, vendor);
    policy_case_t c;
    policy_result_t res;
    char *err = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int r = case_from_json_text(case_text, strlen(case_text), &c, &err);
    if (r < 0)
        fprintf(stderr, "\n  test case: %s\n", err ? err : "?");
    CU_ASSERT_EQUAL_FATAL(r, 0);
    CU_ASSERT_EQUAL_FATAL(policy_evaluate(p, &c, &res), 0);
    json_t *want = result_to_json(&res, p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v) {
        int same = json_equal(v, json_object_get(ev, k));
        if (!same) {
            char *a = json_dumps(json_object_get(ev, k), JSON_ENCODE_ANY);
            char *b = json_dumps(v, JSON_ENCODE_ANY);
            fprintf(stderr, "\n  inspection.completed.%s: got %s, want %s\n", k,
                    a ? a : "(absent)", b);
            free(a);
            free(b);
        }
        CU_ASSERT(same);
    }
    json_decref(want);
    policy_result_free(&res);
    policy_case_free(&c);
}

/* The case of V7 RMA `number` as imported (expected serial `expected`), with this
 * inspection object: what `rmactl policy eval` would be given. Malloc'd. */
static char *v7_case(const char *number, const char *expected, const char *inspection)
{
    char *t = NULL;
    CU_ASSERT_FATAL(asprintf(&t,
                             "{\"today\": \"%s\","
                             " \"rma\": {\"number\": \"%s\", \"issued\": \"%s\","
                             "         \"kind\": \"warranty\", \"expected_serial\": \"%s\"},"
                             " \"product\": {\"vendor\": \"V7\","
                             "             \"family\": \"Solid State Drives\", \"purchased\": \"%s\"},"
                             " \"inspection\": %s}",
                             day(0), number, day(-5), expected, day(-100), inspection) > 0);
    return t;
}

/* The rule of the deciding (first) reason of an inspection.completed event. */
static const char *first_rule(json_t *ic)
{
    return ev_str(json_array_get(json_object_get(ic, "reasons"), 0), "rule");
}

/* The receipt row's state and disposition, and its stored result equal to the event's. */
static void check_receipt_row(fx_t *f, int64_t id, const char *state, const char *disposition)
{
    db_receipt_t r;
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(f->db, id, &r), 0);
    ASSERT_STR(db_receipt_state_name(r.state), state);
    if (disposition)
        ASSERT_STR(r.disposition, disposition);
    else
        CU_ASSERT_PTR_NULL(r.disposition);
    db_receipt_clear(&r);
}

/* ----------------------------------------------------------------- tests ------- */

static void test_complete_receipt(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o = sc(&f, "RMA-V7001");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    ASSERT_STR(o.kind, "rma");
    int64_t id = o.receipt_id;
    CU_ASSERT(id > 0);

    o = sc(&f, "SN-V7-001");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    ASSERT_STR(o.kind, "serial");
    CU_ASSERT_FALSE(o.serial_mismatch);
    CU_ASSERT_EQUAL(o.receipt_id, id);
    station_status_t s;
    station_status(f.st, &s);
    ASSERT_STR(s.name, "dock1");
    CU_ASSERT_EQUAL(s.receipt_id, id);
    ASSERT_STR(s.rma, "RMA-V7001");
    ASSERT_STR(s.serial, "SN-V7-001");

    CU_ASSERT_EQUAL(sc(&f, "PKG-ORIGINAL").scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(sc(&f, "fault-confirmed").scan, STATION_SCAN_ACCEPTED);   /* any case */
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    ASSERT_STR(o.disposition, "warranty_exchange");
    CU_ASSERT_EQUAL(o.receipt_id, id);
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.receipt_id, 0);
    CU_ASSERT_PTR_NULL(s.rma);
    CU_ASSERT_EQUAL(s.scans, 5);
    CU_ASSERT_EQUAL(s.rejected, 0);

    /* Events: each scan, then the transition it caused. */
    static const char *const topics[] = { "scan.accepted", "receipt.opened", "scan.accepted",
                                          "scan.accepted", "scan.accepted", "scan.accepted",
                                          "inspection.completed", "rma.received" };
    CU_ASSERT_EQUAL_FATAL(n_events(&f), 8);   /* rma.received: its one unit is in */
    for (size_t i = 0; i < 8; i++) {
        ASSERT_STR(ev_str(event(&f, i), "type"), topics[i]);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(event(&f, i), "receipt")), id);
    }
    check_envelopes(&f);
    json_t *sa = event(&f, 0);
    ASSERT_STR(ev_str(sa, "scanner"), SCANNER);
    ASSERT_STR(ev_str(sa, "kind"), "rma");
    ASSERT_STR(ev_str(sa, "text"), "RMA-V7001");
    CU_ASSERT_PTR_NULL(json_object_get(sa, "reason"));
    json_t *op = event(&f, 1);
    ASSERT_STR(ev_str(op, "rma"), "RMA-V7001");
    ASSERT_STR(ev_str(op, "vendor"), "V7");

    json_t *ic = event(&f, 6);
    ASSERT_STR(ev_str(ic, "rma"), "RMA-V7001");
    ASSERT_STR(ev_str(ic, "vendor"), "V7");
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "model")));
    ASSERT_STR(ev_str(ic, "serial"), "SN-V7-001");
    CU_ASSERT_TRUE(json_is_true(json_object_get(ic, "serial_match")));
    json_t *cl = json_object_get(ic, "checklist");
    ASSERT_STR(ev_str(cl, "packaging"), "original");
    CU_ASSERT_TRUE(json_is_true(json_object_get(cl, "foam")));
    ASSERT_STR(ev_str(cl, "seal"), "intact");
    ASSERT_STR(ev_str(cl, "fault"), "confirmed");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(cl, "accessories_present")), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(cl, "accessories_missing")), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(cl, "findings")), 0);
    CU_ASSERT_TRUE(json_is_null(json_object_get(cl, "component")));

    char *case_text = v7_case("RMA-V7001", "SN-V7-001",
                              "{\"serial\": \"SN-V7-001\", \"packaging\": \"original\","
                              " \"fault\": \"confirmed\"}");
    check_result_fields(&f, ic, "V7", case_text);
    free(case_text);
    ASSERT_STR(ev_str(ic, "disposition"), "warranty_exchange");
    ASSERT_STR(ev_str(json_object_get(ic, "warranty"), "status"), "in");

    /* On disk: completed with the same result, RMA received, every scan a row. */
    check_receipt_row(&f, id, "completed", "warranty_exchange");
    db_receipt_t r;
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(f.db, id, &r), 0);
    json_t *stored = json_loads(r.result, 0, NULL);
    json_t *from_event = json_deep_copy(ic);
    const char *const not_result[] = { "v", "seq", "type", "time", "station", "receipt", "rma",
                                       "vendor", "model", "line", "progress", "serial",
                                       "serial_match", "checklist", "decided_on", "timezone" };
    for (size_t i = 0; i < sizeof(not_result) / sizeof(not_result[0]); i++)
        json_object_del(from_event, not_result[i]);
    CU_ASSERT_TRUE(json_equal(stored, from_event));
    /* Issue 13: the decision's date and zone, and the policy as it was, on the row too. */
    char today[CALDATE_STRLEN];
    caldate_format(caldate_today(), today);
    ASSERT_STR(ev_str(ic, "decided_on"), today);
    ASSERT_STR(ev_str(ic, "timezone"), caldate_zone_name());
    const char *ev_sha = ev_str(json_object_get(ic, "policy"), "sha256");
    CU_ASSERT_FATAL(ev_sha != NULL);
    CU_ASSERT_EQUAL(strlen(ev_sha), 64);
    ASSERT_STR(r.policy_sha256, ev_sha);
    CU_ASSERT_PTR_NULL(r.policy_version);   /* policies/v7.yaml has no version: */
    json_decref(stored);
    json_decref(from_event);
    ASSERT_STR(r.serial, "SN-V7-001");
    ASSERT_STR(r.rma, "RMA-V7001");
    db_receipt_clear(&r);
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7001", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_RECEIVED);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE accepted = 1"), 5);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE receipt_id IS NOT NULL"), 5);
    char *raw = q_text(&f, "SELECT raw FROM scans ORDER BY id LIMIT 1");
    ASSERT_STR(raw, "RMA-V7001");
    free(raw);

    /* Received now: the same RMA again is refused. */
    o = sc(&f, "RMA-V7001");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    ASSERT_STR(o.reason, "RMA already received");
    fx_close(&f);
}

static void test_refusals(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o = sc(&f, "RMA-9999");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    ASSERT_STR(o.reason, "unknown RMA");
    int64_t id = o.receipt_id;
    CU_ASSERT(id > 0);
    check_receipt_row(&f, id, "refused", NULL);
    db_receipt_t r;
    CU_ASSERT_EQUAL(db_receipt_get(f.db, id, &r), 0);
    ASSERT_STR(r.rma, "RMA-9999");
    ASSERT_STR(r.reason, "unknown RMA");
    db_receipt_clear(&r);

    json_t *ev = last_event(&f, "receipt.refused");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    ASSERT_STR(ev_str(ev, "reason"), "unknown RMA");
    ASSERT_STR(ev_str(ev, "rma"), "RMA-9999");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "receipt")), id);

    /* A refusal opens nothing: the next RMA opens at once. */
    o = sc(&f, "RMA-V7RCV");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    ASSERT_STR(o.reason, "RMA already received");
    o = sc(&f, "RMA-V7002");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);

    /* Each refusal queued its label in the refusal's own transaction. */
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM print_jobs WHERE why = 'refusal' "
                              "AND printer = 'zebra' AND station = 'dock1' AND state = 'queued'"), 2);

    /* CMD-REPRINT queues the last refused receipt's label again; nothing else happens. */
    o = sc(&f, "CMD-REPRINT");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_NONE);
    CU_ASSERT_TRUE(o.reprint_requested);
    CU_ASSERT_TRUE(o.label_queued);
    CU_ASSERT_EQUAL(o.receipt_id, id + 1);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans "
                              "WHERE text = 'CMD-REPRINT' AND accepted = 1"), 1);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM print_jobs WHERE why = 'reprint' "
                               "AND receipt_id = %lld", (long long)(id + 1));
    CU_ASSERT_EQUAL(q_int(&f, sql), 1);
    check_envelopes(&f);
    fx_close(&f);
}

/* Without a printer nothing is queued, and CMD-REPRINT says why it cannot print. */
static void test_no_printer(void)
{
    fx_printer = "";
    fx_t f;
    fx_open(&f);
    fx_printer = "printer = zebra";
    station_outcome_t o = sc(&f, "RMA-9999");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    CU_ASSERT_FALSE(o.label_queued);
    o = sc(&f, "CMD-REPRINT");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.reason, "this station has no printer");
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM print_jobs"), 0);
    fx_close(&f);

    /* With a printer but nothing labelled yet. */
    fx_open(&f);
    o = sc(&f, "CMD-REPRINT");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.reason, "no label printed at this station yet");
    fx_close(&f);
}

static void test_serial_mismatch_quarantine(void)
{
    fx_t f;
    fx_open(&f);
    sc(&f, "RMA-V7002");
    station_outcome_t o = sc(&f, "  sn-other-7 ");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);   /* recorded, scanning goes on */
    CU_ASSERT_TRUE(o.serial_mismatch);
    sc(&f, "FAULT-CONFIRMED");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    ASSERT_STR(o.disposition, "quarantine");
    json_t *ic = last_event(&f, "inspection.completed");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ic);
    CU_ASSERT_TRUE(json_is_false(json_object_get(ic, "serial_match")));
    ASSERT_STR(first_rule(ic), "rmad-serial-mismatch");
    char *case_text = v7_case("RMA-V7002", "SN-V7-002",
                              "{\"serial\": \"  sn-other-7 \", \"fault\": \"confirmed\"}");
    check_result_fields(&f, ic, "V7", case_text);
    free(case_text);

    /* Trimmed, case-folded: " sn-v7-001 " is the expected "SN-V7-001". */
    sc(&f, "RMA-V7001");
    o = sc(&f, " sn-v7-001 ");
    CU_ASSERT_FALSE(o.serial_mismatch);
    sc(&f, "FAULT-CONFIRMED");   /* V7 decides on the test result: it must be answered */
    o = sc(&f, "CMD-DONE");
    ic = last_event(&f, "inspection.completed");
    CU_ASSERT_TRUE(json_is_true(json_object_get(ic, "serial_match")));
    CU_ASSERT_STRING_NOT_EQUAL(o.disposition, "quarantine");
    check_envelopes(&f);
    fx_close(&f);
}

static void test_cancel(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    sc(&f, "SN-V7-001");
    station_outcome_t o = sc(&f, "CMD-CANCEL");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_CANCELLED);
    CU_ASSERT_EQUAL(o.receipt_id, id);
    check_receipt_row(&f, id, "cancelled", NULL);
    json_t *ev = last_event(&f, "receipt.cancelled");
    CU_ASSERT_PTR_NOT_NULL(ev);
    ASSERT_STR(ev_str(ev, "rma"), "RMA-V7001");
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7001", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_OPEN);   /* nothing was received */

    /* Nothing open: commands that need a receipt are rejected, the RMA opens again. */
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "no open receipt");
    o = sc(&f, "SEAL-BROKEN");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    o = sc(&f, "SN-V7-001");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.kind, "text");
    o = sc(&f, "RMA-V7001");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    CU_ASSERT(o.receipt_id > id);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_second_rma_rejected(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    sc(&f, "SN-V7-001");   /* the receipt has more than its RMA now: no switch */
    station_outcome_t o = sc(&f, "RMA-V7002");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_NONE);
    ASSERT_STR(o.reason, "a receipt is open (RMA-V7001)");
    ASSERT_STR(o.next, "finish it (CMD-DONE) or cancel it (CMD-CANCEL), then scan RMA-V7002 again");
    ASSERT_STR(o.reply, "a receipt is open (RMA-V7001) [receipt 1 RMA-V7001]: finish it (CMD-DONE) "
                        "or cancel it (CMD-CANCEL), then scan RMA-V7002 again");
    CU_ASSERT_EQUAL(o.receipt_id, id);
    CU_ASSERT_EQUAL(o.switched_from, 0);
    o = sc(&f, "CMD-NORMA");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    o = sc(&f, "RMA-V7001");   /* the open one again */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.reason, "RMA-V7001 is already open here");

    json_t *ev = last_event(&f, "scan.rejected");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    ASSERT_STR(ev_str(ev, "reason"), "RMA-V7001 is already open here");
    ASSERT_STR(ev_str(ev, "text"), "RMA-V7001");
    ASSERT_CONTAINS(ev_str(ev, "next"), "answer the fault test");
    /* Rejected scans are stored with their reason, on the open receipt. */
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans "
                              "WHERE accepted = 0 AND reason IS NOT NULL AND receipt_id = 1"), 3);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM receipts"), 1);
    station_status_t s;
    station_status(f.st, &s);
    ASSERT_STR(s.rma, "RMA-V7001");
    CU_ASSERT_EQUAL(s.scans, 5);
    CU_ASSERT_EQUAL(s.rejected, 3);
    /* The other RMA was not touched. */
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7002", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_OPEN);
    check_envelopes(&f);
    fx_close(&f);
}

/*
 * Issue 10: the wrong box's RMA scanned, noticed before anything else: the second RMA
 * switches (the first receipt cancelled and recorded), and the serial that follows
 * goes to the receipt the worker was told about.
 */
static void test_second_rma_switches(void)
{
    fx_t f;
    fx_open(&f);
    int64_t first = sc(&f, "RMA-V7001").receipt_id;
    station_outcome_t o = sc(&f, "CMD-DONE");   /* rejected: changes nothing */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    o = sc(&f, "RMA-V7002");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    CU_ASSERT_EQUAL(o.switched_from, first);
    ASSERT_STR(o.switched_from_rma, "RMA-V7001");
    ASSERT_STR(o.rma, "RMA-V7002");
    int64_t second = o.receipt_id;
    CU_ASSERT(second > first);
    ASSERT_CONTAINS(o.reply, "receipt 1 (RMA-V7001) cancelled, switched to RMA-V7002: receipt 2 "
                             "opened for RMA-V7002 (V7) [receipt 2 RMA-V7002]: scan the unit's serial");
    check_receipt_row(&f, first, "cancelled", NULL);
    char *why = q_text(&f, "SELECT reason FROM receipts WHERE id = 1");
    ASSERT_CONTAINS(why, "switched to RMA-V7002");
    free(why);
    /* Events: the scan, the cancellation of the first, the opening of the second. */
    size_t n = n_events(&f);
    ASSERT_STR(ev_str(event(&f, n - 3), "type"), "scan.accepted");
    ASSERT_STR(ev_str(event(&f, n - 2), "type"), "receipt.cancelled");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(event(&f, n - 2), "receipt")), first);
    ASSERT_STR(ev_str(event(&f, n - 2), "switched_to"), "RMA-V7002");
    ASSERT_STR(ev_str(event(&f, n - 1), "type"), "receipt.opened");

    o = sc(&f, "SN-V7-002");
    CU_ASSERT_EQUAL(o.receipt_id, second);
    CU_ASSERT_FALSE(o.serial_mismatch);
    sc(&f, "FAULT-CONFIRMED");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    CU_ASSERT_EQUAL(o.receipt_id, second);
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7001", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_OPEN);       /* can be received later */
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7002", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_RECEIVED);
    /* A switch also works to an RMA that is refused: the first is still cancelled. */
    first = sc(&f, "RMA-V7001").receipt_id;
    o = sc(&f, "RMA-NOSUCH");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    CU_ASSERT_EQUAL(o.switched_from, first);
    check_receipt_row(&f, first, "cancelled", NULL);
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.receipt_id, 0);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_done_before_serial(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    sc(&f, "FAULT-CONFIRMED");
    station_outcome_t o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "scan the serial first");
    check_receipt_row(&f, id, "open", NULL);
    CU_ASSERT_PTR_NULL(last_event(&f, "inspection.completed"));

    /* An unreadable label is a decision input: CMD-DONE goes ahead with serial null. */
    sc(&f, "SERIAL-REMOVED");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    ASSERT_STR(o.disposition, "paid_repair");   /* V7: serial label removed voids it */
    json_t *ic = last_event(&f, "inspection.completed");
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "serial")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "serial_match")));
    ASSERT_STR(ev_str(json_object_get(ic, "checklist"), "serial_label"), "removed");
    char *case_text = v7_case("RMA-V7001", "SN-V7-001",
                              "{\"serial\": null, \"serial_label\": \"removed\","
                              " \"fault\": \"confirmed\"}");
    check_result_fields(&f, ic, "V7", case_text);
    free(case_text);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_invalid_command(void)
{
    fx_t f;
    fx_open(&f);
    sc(&f, "RMA-V7001");
    station_outcome_t o = sc(&f, "FIND-BANANA");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.kind, "command");
    ASSERT_CONTAINS(o.reason, "BANANA");
    o = sc(&f, "CMD-DONE ");   /* nothing is trimmed from a command */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    char *reason = q_text(&f, "SELECT reason FROM scans WHERE text = 'FIND-BANANA'");
    ASSERT_CONTAINS(reason, "BANANA");
    free(reason);
    /* The checklist did not change: no finding recorded. */
    sc(&f, "SN-V7-001");
    sc(&f, "FIND-COSMETIC_DAMAGE");
    sc(&f, "FAULT-NFF");   /* V7 decides cosmetic damage on the test result */
    sc(&f, "CMD-DONE");
    json_t *ic = last_event(&f, "inspection.completed");
    json_t *findings = json_object_get(json_object_get(ic, "checklist"), "findings");
    CU_ASSERT_EQUAL(json_array_size(findings), 1);
    ASSERT_STR(json_string_value(json_array_get(findings, 0)), "cosmetic_damage");
    check_envelopes(&f);
    fx_close(&f);
}

static void test_gs1(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o;

    /* No receipt open: even a good GS1 string is not expected. */
    static const char good[] = "]d20109506000134352" "21SN-V7-001";
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, good, strlen(good), f.mono += 5000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);

    sc(&f, "RMA-V7001");
    /* A wrong GTIN check digit is rejected with the reason, never taken as a serial. */
    static const char bad[] = "]d20109506000134353" "21SN-V7-001";
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, bad, strlen(bad), f.mono += 5000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.kind, "gs1");
    ASSERT_CONTAINS(o.reason, "check digit");
    /* Malformed: an AI this code does not know. */
    static const char odd[] = "]C1" "3103000123";
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, odd, strlen(odd), f.mono += 5000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "3103");
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_PTR_NULL(s.serial);

    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, good, strlen(good), f.mono += 5000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    ASSERT_STR(o.kind, "gs1");
    CU_ASSERT_FALSE(o.serial_mismatch);
    station_status(f.st, &s);
    ASSERT_STR(s.serial, "SN-V7-001");
    /* The serial is recorded: a second (21) is not expected. FNC1 as a leading GS. */
    static const char second[] = GS "0109506000134352" "21OTHER";
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, second, strlen(second), f.mono += 5000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "serial is already recorded");

    sc(&f, "FAULT-CONFIRMED");
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.disposition, "warranty_exchange");
    json_t *ic = last_event(&f, "inspection.completed");
    ASSERT_STR(ev_str(ic, "serial"), "SN-V7-001");
    char *cl = q_text(&f, "SELECT json_extract(checklist, '$.gtin') FROM receipts");
    ASSERT_STR(cl, "09506000134352");
    free(cl);
    /* The symbology is stored with the scan, the GS byte with the raw bytes. */
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE symbology = ']d2'"), 3);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE instr(raw, x'1d') > 0"), 1);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_double_read(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o;
    sc(&f, "RMA-V7001");
    size_t events = n_events(&f);

    int64_t t = f.mono + 10000;
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "ACC-REMOTE", 10, t, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    /* Same scanner, same text, 1.4 s later: one read. */
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "ACC-REMOTE\r\n", 12, t + 1400, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_DOUBLE_READ);
    CU_ASSERT_EQUAL(n_events(&f), events + 1);
    /* Another scanner reading the same barcode is a read of its own. */
    CU_ASSERT_EQUAL(scan_raw(&f, "tcp:127.0.0.1:7790#2", "ACC-REMOTE", 10, t + 1450, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    /* The window runs from the stored read: 1.5 s later is a new read. */
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "ACC-REMOTE", 10, t + 1500, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    /* A different barcode in between is no double read either. */
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "SN-V7-001", 9, t + 1600, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "ACC-REMOTE", 10, t + 1700, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);

    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE text = 'ACC-REMOTE'"), 4);
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.double_reads, 1);
    CU_ASSERT_EQUAL(s.scans, 6);
    /* Rejected reads are deduplicated too: recorded once. */
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "RMA-V7002", 9, t + 9000, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    CU_ASSERT_EQUAL(scan_raw(&f, SCANNER, "RMA-V7002", 9, t + 9100, &o), 0);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_DOUBLE_READ);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans"), 7);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_restart_resumes(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-EF001").receipt_id;
    sc(&f, "EF-SN-1");
    sc(&f, "ACC-POWER-ADAPTER");
    sc(&f, "SEAL-BROKEN");

    /* The daemon stops: the station goes, the database is closed and opened again. */
    station_destroy(&f.st);
    char *err = NULL;
    db_close(&f.db);
    CU_ASSERT_EQUAL_FATAL(db_open(f.dbfile, &f.db, &err), 0);
    fx_start_station(&f);
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.receipt_id, id);
    ASSERT_STR(s.rma, "RMA-EF001");
    ASSERT_STR(s.serial, "EF-SN-1");
    CU_ASSERT_EQUAL(s.scans, 0);

    /* The receipt continues: a second RMA is still rejected, the checklist kept. */
    CU_ASSERT_EQUAL(sc(&f, "RMA-V7001").scan, STATION_SCAN_REJECTED);
    sc(&f, "ACC-STAND");
    /* The fee depends on the accessories: the ones not scanned are confirmed missing. */
    station_outcome_t o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "the accessories (cable-kit) not answered");
    sc(&f, "ACC-NONE");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    CU_ASSERT_EQUAL(o.receipt_id, id);
    ASSERT_STR(o.disposition, "restock_fee");
    CU_ASSERT_TRUE(o.label_queued);

    /* After another restart, CMD-REPRINT still knows the station's last label. */
    station_destroy(&f.st);
    fx_start_station(&f);
    o = sc(&f, "CMD-REPRINT");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    CU_ASSERT_EQUAL(o.receipt_id, id);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM print_jobs WHERE why = 'disposition'"), 1);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM print_jobs WHERE why = 'reprint'"), 1);
    json_t *ic = last_event(&f, "inspection.completed");
    json_t *cl = json_object_get(ic, "checklist");
    json_t *want_present = json_pack("[s, s]", "power-adapter", "stand");
    json_t *want_missing = json_pack("[s]", "cable-kit");
    CU_ASSERT_TRUE(json_equal(json_object_get(cl, "accessories_present"), want_present));
    CU_ASSERT_TRUE(json_equal(json_object_get(cl, "accessories_missing"), want_missing));
    json_decref(want_present);
    json_decref(want_missing);
    ASSERT_STR(ev_str(cl, "seal"), "broken");
    ASSERT_STR(ev_str(ic, "model"), "EN-220");
    char *case_text;
    CU_ASSERT_FATAL(asprintf(&case_text,
                             "{\"today\": \"%s\","
                             " \"rma\": {\"number\": \"RMA-EF001\", \"issued\": \"%s\","
                             "         \"kind\": \"credit\", \"expected_serial\": \"EF-SN-1\"},"
                             " \"product\": {\"vendor\": \"EverFocus\", \"model\": \"EN-220\","
                             "             \"family\": \"Monitors\", \"purchased\": \"%s\","
                             "             \"shipped\": \"%s\"},"
                             " \"inspection\": {\"serial\": \"EF-SN-1\", \"seal\": \"broken\","
                             "                  \"accessories_missing\": [\"cable-kit\"]}}",
                             day(0), day(-2), day(-10), day(-9)) > 0);
    check_result_fields(&f, ic, "EverFocus", case_text);
    free(case_text);
    /* Every event of both runs, one gapless sequence. */
    check_envelopes(&f);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE receipt_id IS NOT NULL"), 9);
    fx_close(&f);
}

static void test_no_rma(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o = sc(&f, "CMD-NORMA");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    int64_t id = o.receipt_id;
    json_t *op = last_event(&f, "receipt.opened");
    CU_ASSERT_TRUE(json_is_null(json_object_get(op, "rma")));
    o = sc(&f, "XK-0042");
    ASSERT_STR(o.kind, "serial");
    CU_ASSERT_FALSE(o.serial_mismatch);
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.disposition, "quarantine");
    json_t *ic = last_event(&f, "inspection.completed");
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "rma")));
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "vendor")));
    json_t *reason = json_array_get(json_object_get(ic, "reasons"), 0);
    ASSERT_STR(ev_str(reason, "rule"), "rmad-no-rma");
    ASSERT_CONTAINS(ev_str(reason, "text"), "no RMA");
    ASSERT_STR(json_string_value(json_array_get(json_object_get(ic, "flags"), 0)), "manual_review");
    ASSERT_STR(ev_str(json_object_get(ic, "warranty"), "status"), "unknown");
    check_receipt_row(&f, id, "completed", "quarantine");
    fx_close(&f);
}

static void test_policy_decides_at_done(void)
{
    fx_t f;
    fx_open(&f);
    /* Issued 60 days ago: spec station step 1 refuses an expired RMA at the scan, and
     * "expired" is EverFocus' own clause (RMA valid 30 days), named in the reason. */
    station_outcome_t o = sc(&f, "RMA-EFOLD");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    json_t *rf = last_event(&f, "receipt.refused");
    ASSERT_CONTAINS(ev_str(rf, "reason"), "rma-valid-30-days");
    ASSERT_CONTAINS(ev_str(rf, "reason"), "valid for 30 days");
    /* Refused, not opened: the next scan is no serial of an open receipt. */
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    json_t *ic;

    /* A vendor with no policy file: held for a person. */
    o = sc(&f, "RMA-ACME1");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    sc(&f, "AC-SN-1");
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.disposition, "quarantine");
    ic = last_event(&f, "inspection.completed");
    ASSERT_STR(first_rule(ic), "rmad-no-policy");
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "policy")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(ic, "serial_match")));
    check_envelopes(&f);
    fx_close(&f);
}

static const char acme_policy[] =
    "vendor: Acme\n"
    "warranty:\n"
    "  basis: purchased\n"
    "  default: { period: 1y, service: exchange, label: \"All\" }\n"
    "accessories:\n"
    "  - family: [Remotes]\n"
    "    items: [batteries, { name: charger, part: \"AC-CH-01\" }]\n"
    "rules:\n"
    "  - id: freight\n"
    "    clause: \"freight is the customer's\"\n"
    "    flags: [customer_pays_freight]\n"
    "    reason: \"freight is the customer's\"\n";

/*
 * Issue 10: rmad's own label barcodes are never a serial or an accessory. During an
 * open receipt they are rejected; with none open the receipt is looked up and becomes
 * the label CMD-REPRINT prints again.
 */
static void test_own_labels(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    char code[LABELCODE_RECEIPT_MAX];
    CU_ASSERT_EQUAL(labelcode_receipt(id, code), 0);
    ASSERT_STR(code, "RCPT-000001");
    station_outcome_t o = sc(&f, code);   /* the Code 128 */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.kind, "label");
    ASSERT_CONTAINS(o.reason, "rmad label");
    o = sc(&f, "RMAD RCPT-000001 RMA:RMA-V7001 SN:SN-V7-001");   /* the DataMatrix */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "rmad label");
    o = sc(&f, "RMA:RMA-V7001 SN:SN-V7-001");   /* an older label's DataMatrix */
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "rmad label");
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_PTR_NULL(s.serial);   /* the serial is still to be scanned */
    ASSERT_CONTAINS(o.next, "scan the unit's serial");
    sc(&f, "SN-V7-001");
    sc(&f, "FAULT-CONFIRMED");
    CU_ASSERT_EQUAL(sc(&f, "CMD-DONE").receipt, STATION_RECEIPT_COMPLETED);
    /* A receipt of another station and then this one's: CMD-REPRINT follows the scan. */
    int64_t other = sc(&f, "RMA-NOSUCH").receipt_id;   /* refused: labelled */
    o = sc(&f, "rcpt-000001");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    ASSERT_STR(o.kind, "label");
    CU_ASSERT_EQUAL(o.receipt_id, id);
    ASSERT_CONTAINS(o.reply, "rmad label of receipt 1: RMA-V7001, completed warranty_exchange");
    ASSERT_CONTAINS(o.reply, "[no receipt open]");
    o = sc(&f, "CMD-REPRINT");
    CU_ASSERT_EQUAL(o.receipt_id, id);
    CU_ASSERT_NOT_EQUAL(o.receipt_id, other);
    o = sc(&f, "RCPT-000099");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "not on record");
    /* Not rmad's: short, unpadded or with more after it. */
    int64_t rid;
    CU_ASSERT_EQUAL(labelcode_parse("RCPT-12", &rid), 0);
    CU_ASSERT_EQUAL(labelcode_parse("RCPT-000012X", &rid), 0);
    CU_ASSERT_EQUAL(labelcode_parse("SN:12345", &rid), 0);
    CU_ASSERT_EQUAL(labelcode_parse("RCPT-000012", &rid), 1);
    CU_ASSERT_EQUAL(rid, 12);
    check_envelopes(&f);
    fx_close(&f);
}

/*
 * Issue 10: the sealed EverFocus camera. Its credit depends on the accessories, which
 * nobody scanned: CMD-DONE is refused naming them, and after ACC-ALL there is no fee.
 * Items the policy does not decide on (the fault test of a credit return) are not asked.
 */
static void test_checklist_explicit(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o = sc(&f, "RMA-EFCAM");
    ASSERT_CONTAINS(o.next, "scan the unit's serial");
    o = sc(&f, "EF-CAM-1");
    ASSERT_STR(o.next, "answer the accessories (power-adapter, mounting-kit, quick-guide): ACC-ALL, "
                       "ACC-NONE, or ACC-<name> for each one there");
    sc(&f, "PKG-ORIGINAL");
    sc(&f, "SEAL-INTACT");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_STR(o.reason, "not finished: the accessories (power-adapter, mounting-kit, quick-guide) "
                         "not answered");
    ASSERT_CONTAINS(o.reply, "[receipt 1 RMA-EFCAM]: answer the accessories");
    json_t *ev = last_event(&f, "scan.rejected");
    ASSERT_CONTAINS(ev_str(ev, "next"), "ACC-ALL");
    CU_ASSERT_PTR_NULL(last_event(&f, "inspection.completed"));
    o = sc(&f, "ACC-ALL");
    ASSERT_STR(o.reply, "accessories present: power-adapter, mounting-kit, quick-guide "
                        "[receipt 1 RMA-EFCAM]: " "scan further checklist barcodes, or CMD-DONE to finish");
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    ASSERT_STR(o.disposition, "restock");
    json_t *ic = last_event(&f, "inspection.completed");
    CU_ASSERT_EQUAL(json_number_value(json_object_get(ic, "restocking_fee_pct")), 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(ic, "checklist"),
                                                    "accessories_missing")), 0);

    /* Another camera, opened: each answer that still changes the credit is asked. */
    /* The RMA authorises two more cameras (schema 4: a line's quantity and serials). */
    exec_sql(&f, "UPDATE rmas SET status = 'open' WHERE number = 'RMA-EFCAM';"
                 "UPDATE rma_lines SET quantity = 3, serials = 'EF-CAM-1|EF-CAM-2|EF-CAM-3' "
                 "WHERE rma = 'RMA-EFCAM';"
                 "INSERT INTO rma_serials VALUES ('RMA-EFCAM', 1, 'EF-CAM-2', 'EF-CAM-2'),"
                 "                               ('RMA-EFCAM', 1, 'EF-CAM-3', 'EF-CAM-3')");
    sc(&f, "RMA-EFCAM");
    sc(&f, "EF-CAM-2");
    o = sc(&f, "ACC-POWER-ADAPTER");
    ASSERT_STR(o.next, "answer the packaging: PKG-ORIGINAL, PKG-REPLACEMENT or PKG-NONE; "
                       "then the seal, the accessories");
    o = sc(&f, "ACC-NONE");   /* the others are missing */
    ASSERT_CONTAINS(o.reply, "accessories missing: mounting-kit, quick-guide [receipt");
    o = sc(&f, "PKG-ORIGINAL");
    ASSERT_STR(o.next, "answer the seal: SEAL-INTACT or SEAL-BROKEN");
    o = sc(&f, "SEAL-BROKEN");
    ASSERT_STR(o.next, "scan further checklist barcodes, or CMD-DONE to finish");
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.disposition, "restock_fee");
    ASSERT_CONTAINS(o.reply, "restocking fee 25%");

    /* All accessories there: now packaging and seal decide, one after the other. */
    sc(&f, "RMA-EFCAM");
    sc(&f, "EF-CAM-3");
    o = sc(&f, "ACC-ALL");
    ASSERT_STR(o.next, "answer the packaging: PKG-ORIGINAL, PKG-REPLACEMENT or PKG-NONE; "
                       "then the seal");
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.reason, "not finished: the packaging not answered");
    o = sc(&f, "PKG-NONE");
    /* No box at all: the fee is decided, the seal no longer changes it. */
    ASSERT_STR(o.next, "scan further checklist barcodes, or CMD-DONE to finish");
    o = sc(&f, "CMD-DONE");
    ASSERT_STR(o.disposition, "restock_fee");
    check_envelopes(&f);
    fx_close(&f);
}

static void test_accessory_part_number(void)
{
    char *dir, *file;
    CU_ASSERT_FATAL(asprintf(&dir, "%s/acme-policies", tmpdir) > 0);
    CU_ASSERT_FATAL(asprintf(&file, "%s/acme.yaml", dir) > 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(th_write_file(file, acme_policy), 0);

    fx_t f;
    fx_open_with(&f, dir);
    sc(&f, "RMA-ACME1");
    /* The charger's own barcode, before the serial: a listed part is not a serial. */
    station_outcome_t o = sc(&f, "ac-ch-01");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    ASSERT_STR(o.kind, "accessory");
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_PTR_NULL(s.serial);
    o = sc(&f, "AC-SN-1");
    ASSERT_STR(o.kind, "serial");
    /* The serial is recorded: other text is not expected now. */
    o = sc(&f, "SOMETHING-ELSE");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "not expected now");
    /* Acme never charges for accessories: the missing batteries are not asked for. */
    o = sc(&f, "CMD-DONE");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    json_t *cl = json_object_get(last_event(&f, "inspection.completed"), "checklist");
    json_t *want_present = json_pack("[s]", "charger");
    json_t *want_missing = json_pack("[s]", "batteries");
    CU_ASSERT_TRUE(json_equal(json_object_get(cl, "accessories_present"), want_present));
    CU_ASSERT_TRUE(json_equal(json_object_get(cl, "accessories_missing"), want_missing));
    json_decref(want_present);
    json_decref(want_missing);
    fx_close(&f);
    free(dir);
    free(file);
}

static void test_driver_rejected(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    static const unsigned char raw[] = { 'A', 0x07, 'B', 0xff };
    f.now += 1000;
    CU_ASSERT_EQUAL(station_record_rejected(f.st, SCANNER, raw, sizeof(raw),
                                            "control byte 0x07 at offset 1", f.now, f.ob, NULL), 0);
    CU_ASSERT_EQUAL(outbox_flush(f.ob, sink, &f), 0);
    json_t *ev = last_event(&f, "scan.rejected");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    ASSERT_STR(ev_str(ev, "reason"), "control byte 0x07 at offset 1");
    ASSERT_STR(ev_str(ev, "kind"), "invalid");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "receipt")), id);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE kind = 'invalid' AND accepted = 0 "
                              "AND raw = x'410742ff' AND text IS NULL"), 1);
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.rejected, 1);
    CU_ASSERT_EQUAL(s.receipt_id, id);   /* the receipt is not changed */
    /* An empty read, with no scanner id. */
    f.now += 1000;
    CU_ASSERT_EQUAL(station_record_rejected(f.st, NULL, NULL, 0, "empty scan", f.now, f.ob, NULL), 0);
    CU_ASSERT_EQUAL(outbox_flush(f.ob, sink, &f), 0);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans WHERE scanner = 'unknown'"), 1);
    check_envelopes(&f);
    fx_close(&f);
}

/*
 * A failure in the middle of CMD-DONE (the inspection.completed event is refused by
 * an injected trigger, after the receipt and the RMA were updated): everything rolls
 * back, nothing is published, and the station is as before, so the same CMD-DONE
 * succeeds once the fault is gone.
 */
static void test_failure_rolls_back(void)
{
    fx_t f;
    fx_open(&f);
    int64_t id = sc(&f, "RMA-V7001").receipt_id;
    sc(&f, "SN-V7-001");
    sc(&f, "FAULT-CONFIRMED");
    size_t events = n_events(&f);
    long long scans = q_int(&f, "SELECT count(*) FROM scans");

    exec_sql(&f, "CREATE TRIGGER inject BEFORE INSERT ON outbox "
                 "WHEN NEW.topic = 'inspection.completed' "
                 "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    station_outcome_t o;
    memset(&o, 0x5a, sizeof(o));
    f.mono += 5000;
    int r = scan_raw(&f, SCANNER, "CMD-DONE", 8, f.mono, &o);
    CU_ASSERT(r < 0);
    ASSERT_CONTAINS(db_errmsg(f.db), "injected failure");
    /* The worker still gets an answer: nothing changed, scan it again. */
    ASSERT_STR(station_unstored_reply(f.st, -EIO),
               "not stored: rmad could not write it (its log says why); nothing changed "
               "[receipt 1 RMA-V7001]: scan it again");
    ASSERT_STR(station_unstored_reply(f.st, -ENOSPC),
               "not stored: the disk is full; nothing changed [receipt 1 RMA-V7001]: scan it again");
    CU_ASSERT_EQUAL(n_events(&f), events);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM scans"), scans);
    CU_ASSERT_EQUAL(q_int(&f, "SELECT count(*) FROM outbox"), (long long)events);
    check_receipt_row(&f, id, "open", NULL);
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-V7001", &rma), 0);
    CU_ASSERT_EQUAL(rma.status, DB_RMA_OPEN);
    station_status_t s;
    station_status(f.st, &s);
    CU_ASSERT_EQUAL(s.receipt_id, id);
    CU_ASSERT_EQUAL(s.scans, 3);
    CU_ASSERT_FALSE(db_in_transaction(f.db));

    exec_sql(&f, "DROP TRIGGER inject");
    /* Right away (the failed read was not recorded, so it is no double read). */
    r = scan_raw(&f, SCANNER, "CMD-DONE", 8, f.mono + 100, &o);
    CU_ASSERT_EQUAL(r, 0);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    check_envelopes(&f);
    fx_close(&f);
}

static void test_misuse(void)
{
    fx_t f;
    fx_open(&f);
    station_outcome_t o;
    scan_t empty = { 0 };
    CU_ASSERT_EQUAL(station_apply_scan(f.st, &empty, f.now, f.ob, &o), -EINVAL);
    /* An outbox with pending events would mix two transactions' events. */
    CU_ASSERT_EQUAL(db_begin(f.db), 0);
    CU_ASSERT_EQUAL(outbox_append(f.ob, f.db, "daemon.started", NULL, NULL, 0, f.now), 0);
    CU_ASSERT_EQUAL(db_commit(f.db), 0);
    CU_ASSERT_EQUAL(station_record_rejected(f.st, SCANNER, "x", 1, "r", f.now, f.ob, NULL), -EINVAL);
    outbox_discard(f.ob);
    /* Time must be a valid event time. */
    CU_ASSERT_EQUAL(station_record_rejected(f.st, SCANNER, "x", 1, "r", 0, f.ob, NULL), -EINVAL);

    /* A bad rma_pattern is reported by station_new. */
    char *err = NULL;
    char *saved = f.cfg->rma_pattern;
    f.cfg->rma_pattern = "([";
    CU_ASSERT_PTR_NULL(station_new(&f.cfg->stations[0], f.cfg, f.db, &f.ps, &err));
    ASSERT_CONTAINS(err, "rma_pattern");
    free(err);
    f.cfg->rma_pattern = saved;
    fx_close(&f);
}

/* ---------------------------------------------------------------- policyset ---- */

static void test_policyset(void)
{
    policyset_t *ps = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(policyset_load("policies", &ps, &err), 0);
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT_EQUAL(policyset_count(ps), 6);
    /* File-name order. */
    ASSERT_STR(policy_file(policyset_get(ps, 0)), "policies/everfocus.yaml");
    ASSERT_STR(policy_file(policyset_get(ps, 1)), "policies/nordlicht.yaml");
    ASSERT_STR(policy_file(policyset_get(ps, 5)), "policies/v7.yaml");
    CU_ASSERT_PTR_NULL(policyset_get(ps, 6));
    ASSERT_STR(policy_vendor(policyset_for_vendor(ps, "ingram micro")), "V7");
    ASSERT_STR(policy_vendor(policyset_for_vendor(ps, "EverFocus Electronics")), "EverFocus");
    CU_ASSERT_PTR_NULL(policyset_for_vendor(ps, "Acme"));
    CU_ASSERT_PTR_NULL(policyset_for_vendor(ps, NULL));
    /* Issue 13: a policy's own findings are known to the set, built-in ones are not "own". */
    ASSERT_STR(policy_vendor(policyset_finding_owner(ps, "panel_burn_in")), "Nordlicht Displays");
    CU_ASSERT_PTR_NULL(policyset_finding_owner(ps, "wear"));
    CU_ASSERT_PTR_NULL(policyset_finding_owner(ps, "banana"));
    CU_ASSERT_PTR_NULL(policyset_finding_owner(NULL, "panel_burn_in"));
    policyset_destroy(&ps);
    CU_ASSERT_PTR_NULL(ps);
    policyset_destroy(&ps);
    policyset_destroy(NULL);

    /* One broken file fails the whole set, with its FILE:LINE message. */
    char *dir;
    CU_ASSERT_FATAL(asprintf(&dir, "%s/ps", tmpdir) > 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    CU_ASSERT_EQUAL(policyset_load(dir, &ps, &err), -ENOENT);
    ASSERT_CONTAINS(err, "no *.yaml policy files");
    free(err);
    err = NULL;

    char path[4200];
    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    CU_ASSERT_EQUAL(th_write_file(path, acme_policy), 0);
    snprintf(path, sizeof(path), "%s/.hidden.yaml", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "not: [a policy"), 0);
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "not a policy"), 0);
    CU_ASSERT_EQUAL(policyset_load(dir, &ps, &err), 0);
    CU_ASSERT_EQUAL(policyset_count(ps), 1);
    policyset_destroy(&ps);

    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "vendor: Beta\nwarranty:\n  basis: purchased\n"
                                        "  bogus: 1\n"), 0);
    ps = (policyset_t *)&ps;   /* sentinel: untouched on failure */
    CU_ASSERT(policyset_load(dir, &ps, &err) < 0);
    CU_ASSERT_PTR_EQUAL(ps, (policyset_t *)&ps);
    char want[4300];
    snprintf(want, sizeof(want), "%s:", path);
    ASSERT_CONTAINS(err, want);
    free(err);
    err = NULL;

    /* Two files for one vendor: refused rather than chosen by file name. */
    CU_ASSERT_EQUAL(th_write_file(path, acme_policy), 0);
    CU_ASSERT_EQUAL(policyset_load(dir, &ps, &err), -EEXIST);
    ASSERT_CONTAINS(err, "Acme");
    free(err);
    err = NULL;

    snprintf(path, sizeof(path), "%s/nope", tmpdir);
    CU_ASSERT_EQUAL(policyset_load(path, &ps, &err), -ENOENT);
    ASSERT_CONTAINS(err, "No such file");
    free(err);
    free(dir);
}

/*
 * Shipped policies with local overrides (/usr/share/rmad/policies and
 * /etc/rmad/policies): same name replaces, a new name adds, an empty or missing local
 * directory changes nothing, a broken local file is named.
 */
/* acme_policy under another vendor name, written to path. */
static int write_vendor_policy(const char *path, const char *vendor)
{
    char text[2048];
    snprintf(text, sizeof(text), "vendor: %s\n%s", vendor, acme_policy + strlen("vendor: Acme\n"));
    return th_write_file(path, text);
}

static void test_policyset_overrides(void)
{
    char shipped[4200], local[4200], path[4300];
    policyset_t *ps = NULL;
    char *err = NULL;
    snprintf(shipped, sizeof(shipped), "%s/ship", tmpdir);
    snprintf(local, sizeof(local), "%s/local", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(shipped, 0700), 0);
    snprintf(path, sizeof(path), "%s/acme.yaml", shipped);
    CU_ASSERT_EQUAL(th_write_file(path, acme_policy), 0);
    snprintf(path, sizeof(path), "%s/beta.yaml", shipped);
    CU_ASSERT_EQUAL(write_vendor_policy(path, "Beta"), 0);

    CU_ASSERT_EQUAL_FATAL(policyset_load_dirs(shipped, local, &ps, &err), 0);  /* missing */
    CU_ASSERT_EQUAL(policyset_count(ps), 2);
    policyset_destroy(&ps);
    CU_ASSERT_EQUAL_FATAL(mkdir(local, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(policyset_load_dirs(shipped, local, &ps, &err), 0);  /* empty */
    CU_ASSERT_EQUAL(policyset_count(ps), 2);
    policyset_destroy(&ps);

    snprintf(path, sizeof(path), "%s/beta.yaml", local);
    CU_ASSERT_EQUAL(write_vendor_policy(path, "Beta Local"), 0);
    snprintf(path, sizeof(path), "%s/gamma.yaml", local);
    CU_ASSERT_EQUAL(write_vendor_policy(path, "Gamma"), 0);
    CU_ASSERT_EQUAL_FATAL(policyset_load_dirs(shipped, local, &ps, &err), 0);
    CU_ASSERT_EQUAL(policyset_count(ps), 3);
    CU_ASSERT_PTR_NULL(policyset_for_vendor(ps, "Beta"));
    CU_ASSERT_PTR_NOT_NULL(policyset_for_vendor(ps, "Beta Local"));
    CU_ASSERT_PTR_NOT_NULL(policyset_for_vendor(ps, "Gamma"));
    CU_ASSERT_PTR_NOT_NULL(policyset_for_vendor(ps, "Acme"));
    /* In file-name order across both directories, each read from where it is. */
    snprintf(path, sizeof(path), "%s/beta.yaml", local);
    ASSERT_STR(policy_file(policyset_get(ps, 1)), path);
    snprintf(path, sizeof(path), "%s/acme.yaml", shipped);
    ASSERT_STR(policy_file(policyset_get(ps, 0)), path);
    policyset_destroy(&ps);

    snprintf(path, sizeof(path), "%s/gamma.yaml", local);
    CU_ASSERT_EQUAL(th_write_file(path, "vendor: Gamma\nbogus: [\n"), 0);
    CU_ASSERT(policyset_load_dirs(shipped, local, &ps, &err) < 0);
    ASSERT_CONTAINS(err, path);
    free(err);
    err = NULL;
    /* A local file claiming a shipped vendor under another name: refused, not chosen. */
    CU_ASSERT_EQUAL(th_write_file(path, acme_policy), 0);
    CU_ASSERT_EQUAL(policyset_load_dirs(shipped, local, &ps, &err), -EEXIST);
    free(err);
}

/* ------------------------------------------------------------ RMA lines ------- */

static size_t count_events(fx_t *f, const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < n_events(f); i++)
        n += strcmp(ev_str(event(f, i), "type"), topic) == 0;
    return n;
}

/* Scan one unit through: RMA, serial, the answers EverFocus asks for, CMD-DONE. */
static station_outcome_t receive_unit(fx_t *f, const char *rma, const char *serial)
{
    static const char *const answers[] = { "PKG-ORIGINAL", "SEAL-INTACT", "ACC-ALL",
                                           "FAULT-CONFIRMED" };
    station_outcome_t o = sc(f, rma);
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    o = sc(f, serial);
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_ACCEPTED);
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        sc(f, answers[i]);
    o = sc(f, "CMD-DONE");
    if (o.receipt != STATION_RECEIPT_COMPLETED)
        fprintf(stderr, "\n  %s %s: %s\n", rma, serial, o.reply ? o.reply : "?");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_COMPLETED);
    return o;
}

static int unit_text(const db_receipt_t *r, void *data)
{
    char *out = data;
    size_t len = strlen(out);
    snprintf(out + len, 512 - len, "%d:%s:%s ", r->line, db_receipt_state_name(r->state),
             r->serial ? r->serial : "-");
    return 0;
}

static void check_progress(json_t *ev, int line, int received, int authorised)
{
    json_t *l = json_object_get(ev, "line"), *p = json_object_get(ev, "progress");
    if (line) {
        CU_ASSERT_EQUAL(json_integer_value(l), line);
    } else {
        CU_ASSERT_TRUE(json_is_null(l));
    }
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(p, "received")), received);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(p, "authorised")), authorised);
}

/*
 * Issue 11, done when: an RMA of 3 cameras with listed serials and 1 recorder
 * without, received unit by unit, with a double scan, a serial of another RMA, and
 * a unit beyond the authorised quantity.
 */
static void test_rma_lines_receiving(void)
{
    fx_t f;
    fx_open(&f);
    char *csv = NULL, *err = NULL;
    CU_ASSERT_FATAL(asprintf(&csv,
        "number,issued,kind,vendor,line,model,family,quantity,expected_serials,shipped,"
        "warranty_months\n"
        "RMA-EF100,%s,warranty,EverFocus,1,EZN268,IP Cameras,3,EFC-1|EFC-2|EFC-3,%s,36\n"
        "RMA-EF100,%s,warranty,EverFocus,2,ENVR8304D,Recorders,1,,%s,24\n"
        "RMA-EF200,%s,warranty,EverFocus,1,EZN268,IP Cameras,1,EFX-9,%s,36\n",
        day(-3), day(-60), day(-3), day(-60), day(-3), day(-60)) > 0);
    db_import_report_t rep = { 0 };
    CU_ASSERT_EQUAL_FATAL(db_rma_import_csv(f.db, csv, strlen(csv), NULL, &rep, &err), 0);
    db_import_report_clear(&rep);
    free(csv);

    /* Two cameras: the serial picks line 1, each unit its own receipt. */
    receive_unit(&f, "RMA-EF100", "EFC-1");
    json_t *ic = last_event(&f, "inspection.completed");
    check_progress(ic, 1, 1, 4);
    CU_ASSERT_TRUE(json_is_true(json_object_get(ic, "serial_match")));
    ASSERT_STR(ev_str(ic, "disposition"), "warranty_repair");
    ASSERT_STR(ev_str(ic, "model"), "EZN268");
    receive_unit(&f, "RMA-EF100", "efc-2 ");
    check_progress(last_event(&f, "inspection.completed"), 1, 2, 4);

    /* The recorder: no serial listed for it, the one unlisted line takes it. */
    receive_unit(&f, "RMA-EF100", "NVR-77");
    ic = last_event(&f, "inspection.completed");
    check_progress(ic, 2, 3, 4);
    ASSERT_STR(ev_str(ic, "model"), "ENVR8304D");
    CU_ASSERT_TRUE(json_is_null(json_object_get(ic, "serial_match")));
    if (strcmp(ev_str(ic, "disposition"), "quarantine") == 0) {
        char *t = json_dumps(json_object_get(ic, "reasons"), 0);
        fprintf(stderr, "\n  recorder: %s\n", t);
        free(t);
    }
    CU_ASSERT_STRING_NOT_EQUAL(ev_str(ic, "disposition"), "quarantine");

    /* A camera serial scanned twice: a double receipt, rejected. */
    station_outcome_t o = sc(&f, "RMA-EF100");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_OPENED);
    o = sc(&f, "EFC-1");
    CU_ASSERT_EQUAL(o.scan, STATION_SCAN_REJECTED);
    ASSERT_CONTAINS(o.reason, "double receipt: serial EFC-1 of RMA-EF100 is already received");
    CU_ASSERT_EQUAL(sc(&f, "CMD-CANCEL").receipt, STATION_RECEIPT_CANCELLED);

    /* A serial of another RMA: a mismatch, quarantined; it is not the unit the RMA
     * waits for, so the progress stays. */
    o = receive_unit(&f, "RMA-EF100", "EFX-9");
    ASSERT_STR(o.disposition, "quarantine");
    ic = last_event(&f, "inspection.completed");
    check_progress(ic, 1, 3, 4);
    CU_ASSERT_TRUE(json_is_false(json_object_get(ic, "serial_match")));
    ASSERT_STR(first_rule(ic), "rmad-serial-mismatch");
    CU_ASSERT_EQUAL(count_events(&f, "rma.received"), 0);

    /* The last camera: the RMA is received, once. */
    receive_unit(&f, "RMA-EF100", "EFC-3");
    check_progress(last_event(&f, "inspection.completed"), 1, 4, 4);
    CU_ASSERT_EQUAL(count_events(&f, "rma.received"), 1);
    json_t *rr = last_event(&f, "rma.received");
    ASSERT_STR(ev_str(rr, "rma"), "RMA-EF100");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(rr, "authorised")), 4);

    /* A 4th camera: refused, all units are in. */
    o = sc(&f, "RMA-EF100");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    ASSERT_STR(o.reason, "all 4 units of RMA-EF100 received");
    json_t *rf = last_event(&f, "receipt.refused");
    check_progress(rf, 0, 4, 4);
    CU_ASSERT_EQUAL(count_events(&f, "rma.received"), 1);

    db_rma_t r;
    CU_ASSERT_EQUAL_FATAL(db_rma_get(f.db, "RMA-EF100", &r), 0);
    CU_ASSERT_EQUAL(r.status, DB_RMA_RECEIVED);
    CU_ASSERT_EQUAL(r.received, 4);
    /* Each unit's receipt on its line. */
    char units[512] = "";
    CU_ASSERT_EQUAL(db_receipt_foreach_rma(f.db, "RMA-EF100", unit_text, units), 0);
    ASSERT_STR(units, "1:completed:EFC-1 1:completed:efc-2  2:completed:NVR-77 "
                      "1:cancelled:- 1:completed:EFX-9 1:completed:EFC-3 0:refused:- ");
    check_envelopes(&f);
    fx_close(&f);
}

/* A closed RMA is refused with the reason it was closed for. */
static void test_rma_closed_refused(void)
{
    fx_t f;
    fx_open(&f);
    CU_ASSERT_EQUAL(db_rma_close(f.db, "RMA-V7001", "customer keeps the drive", 1000), 0);
    station_outcome_t o = sc(&f, "RMA-V7001");
    CU_ASSERT_EQUAL(o.receipt, STATION_RECEIPT_REFUSED);
    ASSERT_STR(o.reason, "RMA closed: customer keeps the drive");
    fx_close(&f);
}

int suite_station(void)
{
    CU_pSuite s = CU_add_suite("station", setup, teardown);
    if (!s)
        return -1;
    if (!CU_add_test(s, "complete receipt: warranty, events, rows", test_complete_receipt) ||
        !CU_add_test(s, "unknown and received RMAs are refused", test_refusals) ||
        !CU_add_test(s, "no printer: nothing queued, reprint refused", test_no_printer) ||
        !CU_add_test(s, "RMA lines: units, progress, double receipt, quantity",
                     test_rma_lines_receiving) ||
        !CU_add_test(s, "closed RMA refused with its reason", test_rma_closed_refused) ||
        !CU_add_test(s, "serial mismatch is recorded and quarantined",
                     test_serial_mismatch_quarantine) ||
        !CU_add_test(s, "CMD-CANCEL keeps the receipt, cancelled", test_cancel) ||
        !CU_add_test(s, "a second RMA while one is open is rejected", test_second_rma_rejected) ||
        !CU_add_test(s, "a second RMA on a bare receipt switches", test_second_rma_switches) ||
        !CU_add_test(s, "CMD-DONE before the serial is rejected", test_done_before_serial) ||
        !CU_add_test(s, "an invalid command is a rejected scan", test_invalid_command) ||
        !CU_add_test(s, "GS1 (21) gives the serial; bad check digit rejected", test_gs1) ||
        !CU_add_test(s, "double reads are recorded once", test_double_read) ||
        !CU_add_test(s, "a restarted station resumes the open receipt", test_restart_resumes) ||
        !CU_add_test(s, "CMD-NORMA: held for a person", test_no_rma) ||
        !CU_add_test(s, "expired RMA and unknown vendor decided at CMD-DONE",
                     test_policy_decides_at_done) ||
        !CU_add_test(s, "accessory part numbers from the policy", test_accessory_part_number) ||
        !CU_add_test(s, "rmad's own label barcodes", test_own_labels) ||
        !CU_add_test(s, "the checklist asks what decides the outcome", test_checklist_explicit) ||
        !CU_add_test(s, "reads the driver rejected are stored", test_driver_rejected) ||
        !CU_add_test(s, "a failed transaction changes nothing", test_failure_rolls_back) ||
        !CU_add_test(s, "misuse is refused", test_misuse) ||
        !CU_add_test(s, "policies directory as a set", test_policyset) ||
        !CU_add_test(s, "local policies override shipped ones", test_policyset_overrides))
        return -1;
    return 0;
}
