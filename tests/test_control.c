/*
 * The control socket (daemon/control.h) and the rmactl commands that use it, with
 * real parts: a config file and a SQLite database in a temp dir, the control ROUTER
 * and the event bus on ipc:// sockets there, served by the real loop on a second
 * thread, and two independent clients: the built rmactl binary (what a user runs)
 * and Debian's python3-zmq for malformed messages.
 *
 * The test thread only waits for the child while the loop thread serves; it reads
 * the database again only once the loop thread has stopped. Waits are bounded
 * (RMACTL_TIMEOUT_MS, the python client's own timeout); no assertion depends on how
 * long anything took.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "daemon/bus.h"
#include "core/config.h"
#include "daemon/control.h"
#include "daemon/txn.h"
#include "proto/control.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define PYTHON "/usr/bin/python3"
#define CLIENT "tests/zmq_client.py"

static const char config_text[] =
    "[daemon]\n"
    "database = rmad.db\n"
    "policies = policies\n"
    "pub      = ipc://pub.sock\n"
    "replay   = ipc://replay.sock\n"
    "control  = ipc://run/rmad.ctl\n"
    "\n"
    "[station dock1]\n"
    "scanner = tcp:127.0.0.1:7790\n"
    "printer = dock1-labels\n"
    "\n"
    "[station dock2]\n"
    "scanner = tcp:127.0.0.1:7791\n";

/* ---- fixture ------------------------------------------------------------------------ */

struct fx {
    char *dir;
    char conf[4096];
    config_t *cfg;
    db_t *db;
    txn_t *txn;
    void *zctx;
    loop_t *loop;
    control_t *ctl;
    bus_t *bus;
};

static char *path_in(const struct fx *f, const char *name)
{
    char *p = NULL;
    CU_ASSERT_FATAL(asprintf(&p, "%s/%s", f->dir, name) > 0);
    return p;
}

/* The daemon's side as rmad sets it up: config, database, control socket (and bus). */
static void fx_open(struct fx *f, bool with_bus)
{
    char *err = NULL;
    memset(f, 0, sizeof(*f));
    f->dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->dir);
    char *run = path_in(f, "run");
    CU_ASSERT_EQUAL_FATAL(mkdir(run, 0750), 0);
    free(run);
    snprintf(f->conf, sizeof(f->conf), "%s/rmad.conf", f->dir);
    CU_ASSERT_EQUAL_FATAL(th_write_file(f->conf, config_text), 0);
    CU_ASSERT_EQUAL_FATAL(config_load(f->conf, &f->cfg, &err), 0);
    CU_ASSERT_EQUAL_FATAL(db_open(f->cfg->database, &f->db, &err), 0);
    f->zctx = zmq_ctx_new();
    f->loop = loop_new();
    CU_ASSERT_FATAL(f->zctx && f->loop);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->txn = txn_new(f->db, NULL));
    f->ctl = control_new(f->zctx, f->loop, f->txn, f->cfg->control, f->cfg->rma_pattern, &err);
    if (!f->ctl)
        fprintf(stderr, "\n  control_new: %s\n", err ? err : "?");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->ctl);
    CU_ASSERT_PTR_NULL(err);
    if (with_bus) {
        f->bus = bus_new(f->zctx, f->loop, f->db, f->cfg->pub, f->cfg->replay, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->bus);
    }
}

static void fx_close(struct fx *f)
{
    bus_destroy(&f->bus);
    control_destroy(&f->ctl);
    CU_ASSERT_PTR_NULL(f->ctl);
    loop_destroy(&f->loop);
    zmq_ctx_term(f->zctx);
    txn_destroy(&f->txn);
    db_close(&f->db);
    config_destroy(&f->cfg);
    th_rm_rf(f->dir);
    free(f->dir);
}

/* ---- the loop on a second thread ----------------------------------------------------- */

/*
 * Run argv to completion while the loop serves (serve = false: the daemon hangs:
 * its socket exists, nobody answers).
 */
static th_proc_t run_with(struct fx *f, char *const argv[], const char *input, bool serve)
{
    th_serve_t s;
    if (serve)
        th_serve_start(&s, f->loop);
    th_proc_t p = th_run_proc(argv, input);
    if (serve)
        th_serve_stop(&s);
    return p;
}

/* rmactl --config CONF ARGS... (NULL-terminated) */
static th_proc_t rmactl(struct fx *f, const char *input, char *const args[])
{
    char bin[4096];
    char *argv[16] = { bin, "--config", f->conf };
    int n = 3;
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    for (int i = 0; args[i]; i++) {
        CU_ASSERT_FATAL(n < 15);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return run_with(f, argv, input, true);
}

static th_proc_t python(struct fx *f, char *const args[])
{
    char *argv[40] = { PYTHON, CLIENT };
    int n = 2;
    for (int i = 0; args[i]; i++) {
        CU_ASSERT_FATAL(n < 39);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    th_proc_t p = run_with(f, argv, NULL, true);
    if (p.status != 0)
        fprintf(stderr, "\n  zmq_client.py: exit %d\n%s%s", p.status, p.out, p.err);
    return p;
}

#define ASSERT_OUT(p, want_status, want_out, want_err)                                 \
    do {                                                                               \
        if ((p).status != (want_status) || strcmp((p).out, (want_out)) != 0 ||         \
            strcmp((p).err, (want_err)) != 0)                                          \
            fprintf(stderr, "\n  %s:%d: exit %d\n--- stdout\n%s--- want\n%s--- stderr\n%s" \
                    "--- want\n%s", __FILE__, __LINE__, (p).status, (p).out, (want_out),  \
                    (p).err, (want_err));                                              \
        CU_ASSERT_EQUAL((p).status, (want_status));                                    \
        CU_ASSERT_STRING_EQUAL((p).out, (want_out));                                   \
        CU_ASSERT_STRING_EQUAL((p).err, (want_err));                                   \
    } while (0)

/* ---- data ----------------------------------------------------------------------------- */

/* Three receipts: open on dock1, completed and refused on dock2. */
static void add_receipts(db_t *db)
{
    db_receipt_t open = { .station = "dock1", .rma = "RMA-1001", .state = DB_RECEIPT_OPEN,
                          .opened_at = 1790000000000, .closed_at = DB_TIME_NONE };
    db_receipt_t done = { .station = "dock2", .rma = "RMA-1002", .state = DB_RECEIPT_OPEN,
                          .opened_at = 1790000030000, .closed_at = DB_TIME_NONE };
    db_receipt_t refused = { .station = "dock2", .rma = "RMA-NOPE", .state = DB_RECEIPT_REFUSED,
                             .opened_at = 1790000100000, .closed_at = 1790000100000,
                             .reason = "unknown RMA" };
    int64_t id;
    CU_ASSERT_EQUAL_FATAL(db_receipt_insert(db, &open, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(db_receipt_insert(db, &done, &id), 0);
    done.id = id;
    done.state = DB_RECEIPT_COMPLETED;
    done.closed_at = 1790000060000;
    done.disposition = "warranty_repair";
    done.result = "{\"disposition\":\"warranty_repair\"}";
    CU_ASSERT_EQUAL_FATAL(db_receipt_update(db, &done), 0);
    CU_ASSERT_EQUAL_FATAL(db_receipt_insert(db, &refused, NULL), 0);
}

static const char *const topics[] = { "scan.accepted", "receipt.opened", "inspection.completed" };

static void event_body(uint64_t seq, char *buf, size_t len)
{
    snprintf(buf, len, "{\"v\":1,\"seq\":%llu,\"type\":\"%s\",\"station\":\"dock1\"}",
             (unsigned long long)seq, topics[seq % 3]);
}

/* Commit one event; returns its seq (0 on failure). */
static uint64_t add_event(db_t *db)
{
    char body[256];
    uint64_t seq = 0;
    if (db_begin(db) < 0)
        return 0;
    if (db_outbox_next_seq(db, &seq) == 0) {
        event_body(seq, body, sizeof(body));
        if (db_outbox_insert(db, seq, topics[seq % 3], body) == 0 && db_commit(db) == 0)
            return seq;
    }
    (void)db_rollback(db);
    return 0;
}

/* ---- status: the daemon's handler, built with the proto helpers ------------------------ */

static int status_handler(const json_t *req, json_t **reply, void *data)
{
    struct fx *f = data;
    char *err = NULL;
    uint64_t last = 0;
    if (control_check_keys(req, NULL, &err) < 0) {
        *reply = json_pack("{s:s}", "error", err);
        free(err);
        return -EINVAL;
    }
    int rc = db_outbox_last_seq(f->db, &last);
    json_t *stations = json_array();
    for (size_t i = 0; rc == 0 && i < f->cfg->nstations; i++) {
        const config_station_t *cs = &f->cfg->stations[i];
        json_t *st = control_status_station(cs->name, cs->printer);
        for (size_t k = 0; st && k < cs->nscanners; k++)
            rc = control_status_add_scanner(st, cs->scanners[k].spec, i ? "connected" : "listening",
                                            i ? "1 client" : NULL);
        db_receipt_t r = { 0 };
        int found = db_receipt_get_open(f->db, cs->name, &r);
        if (rc == 0)
            rc = control_status_set_receipt(st, found == 0 ? &r : NULL);
        db_receipt_clear(&r);
        if (!st || json_array_append_new(stations, st) < 0)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        json_decref(stations);
        return rc;
    }
    *reply = json_pack("{s:I,s:o}", "last_seq", (json_int_t)last, "stations", stations);
    return 0;
}

static void test_status(void)
{
    struct fx f;
    fx_open(&f, false);
    CU_ASSERT_EQUAL(control_register(f.ctl, "status", NULL, status_handler, &f), 0);
    CU_ASSERT_EQUAL(control_register(f.ctl, "status", NULL, status_handler, &f), -EEXIST);
    CU_ASSERT_EQUAL(control_register(f.ctl, "Bad Name", NULL, status_handler, &f), -EINVAL);
    CU_ASSERT_EQUAL(control_register(f.ctl, "", NULL, status_handler, &f), -EINVAL);
    add_receipts(f.db);
    add_event(f.db);
    add_event(f.db);

    char *args[] = { "status", NULL };
    th_proc_t p = rmactl(&f, NULL, args);
    ASSERT_OUT(p, 0,
               "last seq: 2\n"
               "station dock1 (printer dock1-labels)\n"
               "  scanner tcp:127.0.0.1:7790: listening\n"
               "  open receipt 1: RMA-1001, since 2026-09-21T14:13:20.000Z\n"
               "station dock2\n"
               "  scanner tcp:127.0.0.1:7791: connected (1 client)\n"
               "  no open receipt\n"
               "open receipts: 1\n", "");
    th_proc_free(&p);

    /* --json: the reply itself. --config after the command works too. */
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *argv[] = { bin, "status", "--json", "--config", f.conf, NULL };
    p = run_with(&f, argv, NULL, true);
    CU_ASSERT_EQUAL(p.status, 0);
    json_t *j = json_loads(p.out, 0, NULL);
    CU_ASSERT(json_is_true(json_object_get(j, "ok")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "last_seq")), 2);
    json_t *r = json_object_get(json_array_get(json_object_get(j, "stations"), 0), "receipt");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "rma")), "RMA-1001");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "state")), "open");
    CU_ASSERT(json_is_null(json_object_get(r, "closed_at")));
    json_decref(j);
    th_proc_free(&p);

    /* The config from RMAD_CONFIG. */
    setenv("RMAD_CONFIG", f.conf, 1);
    char *envargv[] = { bin, "status", NULL };
    p = run_with(&f, envargv, NULL, true);
    unsetenv("RMAD_CONFIG");
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT(strncmp(p.out, "last seq: 2\n", 12) == 0);
    th_proc_free(&p);

    /* A handler's refusal reaches rmactl as a one-line error, exit 2. */
    char *bad[] = { "status", "--limit", "3", NULL };
    p = rmactl(&f, NULL, bad);
    ASSERT_OUT(p, 2, "", "rmactl: status: unknown option '--limit' (usage: rmactl "
                         "[--config FILE] status [--json])\n");
    th_proc_free(&p);
    CU_ASSERT_EQUAL(control_stats(f.ctl).requests, 3);
    CU_ASSERT_EQUAL(control_stats(f.ctl).errors, 0);
    fx_close(&f);
}

/* ---- receipts ------------------------------------------------------------------------- */

static void test_receipts(void)
{
    struct fx f;
    fx_open(&f, false);
    add_receipts(f.db);

    char *args[] = { "receipts", NULL };
    th_proc_t p = rmactl(&f, NULL, args);
    ASSERT_OUT(p, 0,
               "ID  STATION  RMA       STATE      DISPOSITION      TIME\n"
               "3   dock2    RMA-NOPE  refused    -                2026-09-21T14:15:00.000Z\n"
               "2   dock2    RMA-1002  completed  warranty_repair  2026-09-21T14:14:20.000Z\n"
               "1   dock1    RMA-1001  open       -                2026-09-21T14:13:20.000Z\n",
               "");
    th_proc_free(&p);

    char *two[] = { "receipts", "--limit", "1", "--json", NULL };
    p = rmactl(&f, NULL, two);
    CU_ASSERT_EQUAL(p.status, 0);
    json_t *j = json_loads(p.out, 0, NULL);
    json_t *list = json_object_get(j, "receipts");
    CU_ASSERT_EQUAL(json_array_size(list), 1);
    json_t *r = json_array_get(list, 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "reason")), "unknown RMA");
    CU_ASSERT(json_is_null(json_object_get(r, "disposition")));
    json_decref(j);
    th_proc_free(&p);

    char *zero[] = { "receipts", "--limit", "0", NULL };
    p = rmactl(&f, NULL, zero);
    ASSERT_OUT(p, 2, "", "rmactl: --limit: expected a whole number >= 1, got '0'\n");
    th_proc_free(&p);
    fx_close(&f);
}

/* ---- rma import ----------------------------------------------------------------------- */

static void test_rma_import(void)
{
    struct fx f;
    fx_open(&f, false);
    char *good = path_in(&f, "rmas.csv"), *bad = path_in(&f, "bad.csv");
    char *args[] = { "rma", "import", good, NULL };

    CU_ASSERT_EQUAL(th_write_file(good,
                                  "number,issued,vendor,model,expected_serial\n"
                                  "RMA-1001,2026-11-02,EverFocus,EPN4220,EF123\n"
                                  "RMA-1002,2026-11-03,V7,V7-SSD,\n"
                                  "RMA-1003,2026-11-04,QCT,QuantaGrid,Q1\n"), 0);
    th_proc_t p = rmactl(&f, NULL, args);
    ASSERT_OUT(p, 0, "imported: 3 new, 0 updated, 0 unchanged\n", "");
    th_proc_free(&p);

    /* Idempotent: the same file again changes nothing. */
    p = rmactl(&f, NULL, args);
    ASSERT_OUT(p, 0, "imported: 0 new, 0 updated, 3 unchanged\n", "");
    th_proc_free(&p);

    CU_ASSERT_EQUAL(th_write_file(good,
                                  "number,issued,vendor,model,expected_serial\n"
                                  "RMA-1001,2026-11-02,EverFocus,EPN4220,EF123\n"
                                  "RMA-1002,2026-11-03,V7,V7-SSD-512,\n"
                                  "RMA-1003,2026-11-04,QCT,QuantaGrid,Q1\n"), 0);
    p = rmactl(&f, NULL, args);
    ASSERT_OUT(p, 0, "imported: 0 new, 1 updated, 2 unchanged\n", "");
    th_proc_free(&p);

    /* Bad rows: every one reported by line, nothing of the file applied, exit 2. */
    CU_ASSERT_EQUAL(th_write_file(bad,
                                  "number,issued,vendor\n"
                                  "RMA-2001,2026-11-02,EverFocus\n"
                                  "RMA-2002,2026-02-30,V7\n"
                                  "BAD,2026-11-02,QCT\n"
                                  "RMA-2001,2026-11-05,QCT\n"), 0);
    char *bargs[] = { "rma", "import", bad, NULL };
    p = rmactl(&f, NULL, bargs);
    char want[2048];
    snprintf(want, sizeof(want),
             "%s:3: issued: expected YYYY-MM-DD, got \"2026-02-30\"\n"
             "%s:4: number: \"BAD\" does not match the RMA number pattern\n"
             "%s:5: issued: differs from line 2, the first row of RMA-2001 (an RMA's issued "
             "is the same on all its lines)\n", bad, bad, bad);
    ASSERT_OUT(p, 2, "", want);
    th_proc_free(&p);

    /* Not UTF-8: refused before sending, with its line. */
    CU_ASSERT_EQUAL(th_write_file(bad, "number,issued,vendor\nRMA-3001,2026-11-02,Ever\xff\n"), 0);
    p = rmactl(&f, NULL, bargs);
    snprintf(want, sizeof(want), "%s:2: not UTF-8 text (byte 46)\n", bad);
    ASSERT_OUT(p, 2, "", want);
    th_proc_free(&p);

    char *missing[] = { "rma", "import", "/nonexistent/rmas.csv", NULL };
    p = rmactl(&f, NULL, missing);
    ASSERT_OUT(p, 2, "", "rmactl: /nonexistent/rmas.csv: No such file or directory\n");
    th_proc_free(&p);

    /* What the database holds: the good file's rows, none of the bad file's. */
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-1002", &rma), 0);
    CU_ASSERT_STRING_EQUAL(rma.model, "V7-SSD-512");
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-2001", &rma), -ENOENT);
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-3001", &rma), -ENOENT);
    free(good);
    free(bad);
    fx_close(&f);
}

/* ---- not running ---------------------------------------------------------------------- */

/* ---- rma show / list / close, rma.put with lines ------------------------------------ */

/* A string of a reply, compared without crashing when it is missing. */
#define ASSERT_JSTR(v, want)                                                              \
    do {                                                                                  \
        const char *got_ = json_string_value(v);                                          \
        if (!got_ || strcmp(got_, want) != 0)                                             \
            fprintf(stderr, "\n  %s:%d: got %s\n  want %s\n", __FILE__, __LINE__,          \
                    got_ ? got_ : "(none)", want);                                        \
        CU_ASSERT(got_ && strcmp(got_, want) == 0);                                       \
    } while (0)

static void add_unit(db_t *db, const char *rma, int line, const char *serial, const char *disp,
                     int64_t at)
{
    db_receipt_t r = { .station = "dock1", .rma = (char *)rma, .line = line,
                       .state = DB_RECEIPT_COMPLETED, .opened_at = at, .closed_at = at + 60000,
                       .serial = (char *)serial, .disposition = (char *)disp };
    CU_ASSERT_EQUAL_FATAL(db_receipt_insert(db, &r, NULL), 0);
}

static void test_rma_lines_commands(void)
{
    struct fx f;
    fx_open(&f, false);
    char *csv = path_in(&f, "lines.csv");
    CU_ASSERT_EQUAL(th_write_file(csv,
        "number,issued,vendor,kind,line,model,family,quantity,expected_serials\n"
        "RMA-4001,2026-11-20,EverFocus,warranty,1,EZN268,IP Cameras,3,CAM-1|CAM-2|CAM-3\n"
        "RMA-4001,2026-11-20,EverFocus,warranty,2,ENVR8304D,NVR,1,\n"
        "RMA-4002,2026-11-20,QCT,,,QuantaGrid,Servers,,\n"), 0);
    char *imp[] = { "rma", "import", csv, NULL };
    th_proc_t p = rmactl(&f, NULL, imp);
    ASSERT_OUT(p, 0, "imported: 2 new, 0 updated, 0 unchanged\n", "");
    th_proc_free(&p);
    add_unit(f.db, "RMA-4001", 1, "CAM-1", "warranty_exchange", 1790000000000);
    add_unit(f.db, "RMA-4001", 2, "NVR-77", "quarantine", 1790000100000);

    char *show[] = { "rma", "show", "RMA-4001", NULL };
    p = rmactl(&f, NULL, show);
    ASSERT_OUT(p, 0,
        "RMA-4001  EverFocus  issued 2026-11-20  warranty\n"
        "partially received: 2 of 4 units received\n"
        "\n"
        "LINE  MODEL      FAMILY      QUANTITY  RECEIVED  EXPECTED SERIALS     RECEIVED SERIALS\n"
        "1     EZN268     IP Cameras  3         1         CAM-1, CAM-2, CAM-3  CAM-1\n"
        "2     ENVR8304D  NVR         1         1         -                    NVR-77\n"
        "\n"
        "RECEIPT  LINE  SERIAL  STATE      DISPOSITION        STATION  TIME\n"
        "1        1     CAM-1   completed  warranty_exchange  dock1    2026-09-21T14:14:20.000Z\n"
        "2        2     NVR-77  completed  quarantine         dock1    2026-09-21T14:16:00.000Z\n",
        "");
    th_proc_free(&p);

    char *list[] = { "rma", "list", "--state", "partial", NULL };
    p = rmactl(&f, NULL, list);
    ASSERT_OUT(p, 0,
        "NUMBER    VENDOR     ISSUED      STATE               LINES  RECEIVED\n"
        "RMA-4001  EverFocus  2026-11-20  partially received  2      2 of 4\n", "");
    th_proc_free(&p);
    char *byvendor[] = { "rma", "list", "--vendor", "qct", NULL };
    p = rmactl(&f, NULL, byvendor);
    ASSERT_OUT(p, 0,
        "NUMBER    VENDOR  ISSUED      STATE  LINES  RECEIVED\n"
        "RMA-4002  QCT     2026-11-20  open   1      0 of 1\n", "");
    th_proc_free(&p);

    char *close_[] = { "rma", "close", "RMA-4002", "--reason", "customer keeps the server", NULL };
    p = rmactl(&f, NULL, close_);
    ASSERT_OUT(p, 0, "closed: RMA-4002\n", "");
    th_proc_free(&p);
    p = rmactl(&f, NULL, close_);
    ASSERT_OUT(p, 2, "", "rmactl: rma close: rma RMA-4002: closed\n");
    th_proc_free(&p);
    char *noreason[] = { "rma", "close", "RMA-4001", NULL };
    p = rmactl(&f, NULL, noreason);
    ASSERT_OUT(p, 2, "", "rmactl: usage: rmactl [--config FILE] rma close NUMBER --reason TEXT\n");
    th_proc_free(&p);
    char *unknown[] = { "rma", "show", "RMA-9999", NULL };
    p = rmactl(&f, NULL, unknown);
    ASSERT_OUT(p, 2, "", "rmactl: rma show: unknown RMA RMA-9999\n");
    th_proc_free(&p);
    char *closed[] = { "rma", "show", "RMA-4002", "--json", NULL };
    p = rmactl(&f, NULL, closed);
    CU_ASSERT_EQUAL(p.status, 0);
    json_t *j = json_loads(p.out, 0, NULL);
    json_t *rma = json_object_get(j, "rma");
    ASSERT_JSTR((json_object_get(rma, "state")), "closed");
    ASSERT_JSTR((json_object_get(rma, "closed_reason")),
                           "customer keeps the server");
    json_decref(j);
    th_proc_free(&p);

    /* rma.put with lines: the same checks as the CSV, then the RMA is what was put. */
    char *args[] = { "raw", f.cfg->control, "dealer", "control",
        "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-6001\\\", "
        "\\\"issued\\\": \\\"2026-11-01\\\", \\\"vendor\\\": \\\"QCT\\\", \\\"lines\\\": ["
        "{\\\"model\\\": \\\"Board\\\", \\\"quantity\\\": 2, \\\"expected_serials\\\": [\\\"B-1\\\", \\\"B-2\\\"]},"
        "{\\\"model\\\": \\\"Cable\\\", \\\"quantity\\\": 5}]}}\"]",
        "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-6002\\\", "
        "\\\"issued\\\": \\\"2026-11-01\\\", \\\"vendor\\\": \\\"QCT\\\", \\\"model\\\": \\\"X\\\", "
        "\\\"lines\\\": [{\\\"quantity\\\": 1, \\\"expected_serials\\\": \\\"B-1|B-2\\\"},"
        "{\\\"vendor\\\": \\\"V7\\\", \\\"expected_serials\\\": [\\\"B-3\\\"]}]}}\"]",
        "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-6003\\\", "
        "\\\"issued\\\": \\\"2026-11-01\\\", \\\"vendor\\\": \\\"QCT\\\", \\\"lines\\\": ["
        "{\\\"quantity\\\": 2, \\\"expected_serials\\\": \\\"B-1\\\"},"
        "{\\\"quantity\\\": 2, \\\"expected_serials\\\": \\\"b-1\\\"}]}}\"]",
        NULL };
    p = python(&f, args);
    CU_ASSERT_EQUAL(p.status, 0);
    char *save = NULL, *line = strtok_r(p.out, "\n", &save);
    if (!line || strcmp(line, "{\"ok\":true,\"number\":\"RMA-6001\",\"result\":\"inserted\"}") != 0)
        fprintf(stderr, "\n  rma.put: %s\n", line ? line : "(no reply)");
    CU_ASSERT(line && strcmp(line, "{\"ok\":true,\"number\":\"RMA-6001\",\"result\":\"inserted\"}") == 0);
    line = strtok_r(NULL, "\n", &save);
    j = json_loads(line ? line : "", 0, NULL);
    ASSERT_JSTR((json_object_get(j, "error")),
        "rma.model: with \"lines\", give it on each line (and 1 more error)");
    json_t *errs = json_object_get(j, "errors");
    CU_ASSERT_EQUAL(json_array_size(errs), 2);
    ASSERT_JSTR((json_array_get(errs, 1)),
                           "rma.lines[1].vendor: a field of the RMA, not of a line");
    json_decref(j);
    line = strtok_r(NULL, "\n", &save);
    j = json_loads(line ? line : "", 0, NULL);
    ASSERT_JSTR((json_object_get(j, "error")),
        "rma.lines[1].expected_serials: serial \"B-1\" is already listed on lines[0]");
    json_decref(j);
    th_proc_free(&p);
    db_rma_t r;
    CU_ASSERT_EQUAL_FATAL(db_rma_get_line(f.db, "RMA-6001", 2, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.model, "Cable");
    CU_ASSERT_EQUAL(r.quantity, 5);
    CU_ASSERT_EQUAL(r.authorised, 7);
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-6002", &r), -ENOENT);

    free(csv);
    fx_close(&f);
}

static void test_not_running(void)
{
    struct fx f;
    fx_open(&f, false);
    char want[4200];
    snprintf(want, sizeof(want), "rmactl: status: rmad is not running (no answer on %s)\n",
             f.cfg->control);

    /* A daemon that hangs: its socket is there, no answer comes. */
    setenv("RMACTL_TIMEOUT_MS", "300", 1);
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *argv[] = { bin, "--config", f.conf, "status", NULL };
    th_proc_t p = run_with(&f, argv, NULL, false);
    ASSERT_OUT(p, 1, "", want);
    th_proc_free(&p);

    /* No daemon at all: said at once, without waiting. */
    control_destroy(&f.ctl);
    unsetenv("RMACTL_TIMEOUT_MS");
    p = run_with(&f, argv, NULL, false);
    ASSERT_OUT(p, 1, "", want);
    th_proc_free(&p);

    /* A config that cannot be read. */
    char *nope[] = { bin, "--config", "/nonexistent/rmad.conf", "receipts", NULL };
    p = run_with(&f, nope, NULL, false);
    ASSERT_OUT(p, 1, "", "rmactl: /nonexistent/rmad.conf: No such file or directory\n");
    th_proc_free(&p);
    fx_close(&f);
}

static void test_socket_setup(void)
{
    struct fx f;
    fx_open(&f, false);
    char *err = NULL;
    struct stat st;
    const char *path = f.cfg->control + 6;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0660);
    CU_ASSERT_STRING_EQUAL(control_endpoint(f.ctl), f.cfg->control);

    /* A second daemon does not steal a live socket. */
    control_t *c2 = control_new(f.zctx, f.loop, f.txn, f.cfg->control, NULL, &err);
    CU_ASSERT_PTR_NULL(c2);
    char want[4200];
    snprintf(want, sizeof(want), "control %s: socket in use by a running process (another rmad?)",
             f.cfg->control);
    CU_ASSERT(err && strcmp(err, want) == 0);
    free(err);

    /* The directory is not created: a clear error. */
    char *ep = NULL;
    CU_ASSERT_FATAL(asprintf(&ep, "ipc://%s/missing/rmad.ctl", f.dir) > 0);
    c2 = control_new(f.zctx, f.loop, f.txn, ep, NULL, &err);
    CU_ASSERT_PTR_NULL(c2);
    snprintf(want, sizeof(want), "control %s: directory %s/missing: No such file or directory",
             ep, f.dir);
    CU_ASSERT(err && strcmp(err, want) == 0);
    free(err);
    free(ep);

    c2 = control_new(f.zctx, f.loop, f.txn, "tcp://127.0.0.1:7799", NULL, &err);
    CU_ASSERT_PTR_NULL(c2);
    CU_ASSERT(err && strcmp(err, "control tcp://127.0.0.1:7799: expected ipc://PATH") == 0);
    free(err);
    c2 = control_new(f.zctx, f.loop, f.txn, f.cfg->control, "([", &err);
    CU_ASSERT_PTR_NULL(c2);
    free(err);
    control_destroy(NULL);
    fx_close(&f);
}

/* ---- malformed messages, from python -------------------------------------------------- */

struct bad_case {
    const char *request;      /* JSON array of frames for zmq_client.py */
    const char *error;        /* the reply's "error" */
    const char *code;
};

static const struct bad_case bad_cases[] = {
    { "[\"not json\"]", "not valid JSON (line 1, column 3): '[' or '{' expected near 'not'",
      "bad_request" },
    { "[\"[1, 2]\"]", "expected a JSON object", "bad_request" },
    { "[\"{}\"]", "cmd: required field missing", "bad_request" },
    { "[\"{\\\"cmd\\\": 5}\"]", "cmd: expected a command name", "bad_request" },
    { "[\"{\\\"cmd\\\": \\\"nope\\\"}\"]",
      "unknown command \"nope\" (known: receipts, rma.import, rma.put, rma.show, rma.list, rma.close, status)", "bad_request" },
    { "[\"{\\\"cmd\\\": \\\"status\\\", \\\"cmd\\\": \\\"receipts\\\"}\"]",
      "not valid JSON (line 1, column 23): duplicate object key near '\"cmd\"'", "bad_request" },
    { "[\"{\\\"cmd\\\": \\\"status\\\"}\", \"x\", \"y\"]", "expected one frame (a JSON object), got 3",
      "bad_request" },
    { "[\"\"]", "empty request: expected a JSON object", "bad_request" },
    { "[{\"hex\": \"7b22636d64223a2022ff227d\"}]", NULL, "bad_request" },
    { "[\"{\\\"cmd\\\": \\\"receipts\\\", \\\"limit\\\": \\\"x\\\"}\"]",
      "limit: expected an integer from 1 to 1000", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"receipts\\\", \\\"bogus\\\": 1}\"]", "unknown field \"bogus\"", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.import\\\"}\"]", "csv: expected the file's text as a string",
      "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.import\\\", \\\"csv\\\": \\\"x\\\", \\\"more\\\": \\\"yes\\\"}\"]",
      "more: expected true or false", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.import\\\", \\\"csv\\\": \\\"x\\\", \\\"upload\\\": \\\"a\\\"}\"]",
      "upload: expected the id of an upload", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.import\\\", \\\"csv\\\": \\\"x\\\", \\\"upload\\\": 99}\"]",
      "upload 99: unknown or expired; send the file again", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-5001\\\", "
      "\\\"issued\\\": \\\"2026-13-01\\\", \\\"vendor\\\": \\\"QCT\\\", \\\"colour\\\": \\\"red\\\"}}\"]",
      "rma.issued: expected YYYY-MM-DD, got \"2026-13-01\" (and 1 more error)", "invalid" },
    { "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-5001\\\"}}\"]",
      NULL, "invalid" },
};

static void test_malformed(void)
{
    struct fx f;
    fx_open(&f, false);
    CU_ASSERT_EQUAL(control_register(f.ctl, "status", NULL, status_handler, &f), 0);
    size_t nbad = sizeof(bad_cases) / sizeof(bad_cases[0]);

    char *args[40] = { "raw", f.cfg->control, "dealer", "control" };
    int n = 4;
    for (size_t i = 0; i < nbad; i++)
        args[n++] = (char *)bad_cases[i].request;
    /* Over CONTROL_IMPORT_MAX for any command, over CONTROL_REQUEST_MAX for the others. */
    char *big = NULL, *bigcmd = NULL;
    CU_ASSERT_FATAL(asprintf(&big, "[{\"repeat\": \"x\", \"n\": %u}]", CONTROL_IMPORT_MAX + 1) > 0);
    CU_ASSERT_FATAL(asprintf(&bigcmd, "[[\"{\\\"cmd\\\": \\\"receipts\\\", \\\"pad\\\": \\\"\", "
                             "{\"repeat\": \"x\", \"n\": %u}, \"\\\"}\"]]", CONTROL_REQUEST_MAX) > 0);
    args[n++] = big;
    args[n++] = bigcmd;
    /* Then good requests: the socket still serves. */
    args[n++] = "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-5001\\\", "
                "\\\"issued\\\": \\\"2026-11-01\\\", \\\"vendor\\\": \\\"QCT\\\", "
                "\\\"warranty_months\\\": 36, \\\"has_storage_media\\\": true, "
                "\\\"order_value\\\": 1250.5, \\\"model\\\": null}}\"]";
    args[n++] = "[\"{\\\"cmd\\\": \\\"rma.put\\\", \\\"rma\\\": {\\\"number\\\": \\\"RMA-5001\\\", "
                "\\\"issued\\\": \\\"2026-11-01\\\", \\\"vendor\\\": \\\"QCT\\\", "
                "\\\"warranty_months\\\": \\\"36\\\", \\\"has_storage_media\\\": \\\"yes\\\", "
                "\\\"order_value\\\": \\\"1250.50\\\"}}\"]";
    args[n++] = "[\"{\\\"cmd\\\": \\\"status\\\"}\"]";
    args[n] = NULL;
    th_proc_t p = python(&f, args);
    free(big);
    free(bigcmd);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT(strstr(p.out, "EXTRA") == NULL);

    /* One reply line per request, in order. */
    char *save = NULL, *line = strtok_r(p.out, "\n", &save);
    size_t i = 0;
    for (; line; line = strtok_r(NULL, "\n", &save), i++) {
        json_t *j = json_loads(line, 0, NULL);
        const char *err = json_string_value(json_object_get(j, "error"));
        const char *code = json_string_value(json_object_get(j, "code"));
        if (i < nbad) {
            const char *want = bad_cases[i].error;
            CU_ASSERT(json_is_false(json_object_get(j, "ok")));
            if (want && (!err || strcmp(err, want) != 0))
                fprintf(stderr, "\n  case %zu: %s\n  want error: %s\n", i, line, want);
            if (want)
                CU_ASSERT(err && strcmp(err, want) == 0);
            CU_ASSERT(err && *err);
            CU_ASSERT(code && strcmp(code, bad_cases[i].code) == 0);
        } else if (i == nbad) {
            CU_ASSERT_STRING_EQUAL(line, "{\"ok\":false,\"error\":\"request too large (16777217 "
                                         "bytes, at most 16777216)\",\"code\":\"bad_request\"}");
        } else if (i == nbad + 1) {
            CU_ASSERT_STRING_EQUAL(line, "{\"ok\":false,\"error\":\"request too large (1048606 "
                                         "bytes, at most 1048576 for receipts)\",\"code\":\"bad_request\"}");
        } else if (i == nbad + 2) {
            CU_ASSERT_STRING_EQUAL(line, "{\"ok\":true,\"number\":\"RMA-5001\",\"result\":\"inserted\"}");
        } else if (i == nbad + 3) {
            /* The same RMA with text values: nothing changes. */
            CU_ASSERT_STRING_EQUAL(line, "{\"ok\":true,\"number\":\"RMA-5001\",\"result\":\"unchanged\"}");
        } else {
            CU_ASSERT(json_is_true(json_object_get(j, "ok")));
            CU_ASSERT(json_is_array(json_object_get(j, "stations")));
        }
        json_decref(j);
    }
    CU_ASSERT_EQUAL(i, nbad + 5);
    th_proc_free(&p);

    /* A REQ client's envelope is kept both ways. */
    char *req[] = { "raw", f.cfg->control, "req", "control", "[\"[]\"]",
                    "[\"{\\\"cmd\\\": \\\"receipts\\\", \\\"limit\\\": 1}\"]", NULL };
    p = python(&f, req);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.out, "{\"ok\":false,\"error\":\"expected a JSON object\",\"code\":\"bad_request\"}\n"
                                  "{\"ok\":true,\"receipts\":[]}\n");
    th_proc_free(&p);

    control_stats_t st = control_stats(f.ctl);
    CU_ASSERT_EQUAL(st.requests, nbad + 5 + 2);
    CU_ASSERT_EQUAL(st.errors, nbad + 2 + 1);
    db_rma_t rma;
    CU_ASSERT_EQUAL(db_rma_get(f.db, "RMA-5001", &rma), 0);
    CU_ASSERT_EQUAL(rma.warranty_months, 36);
    CU_ASSERT_EQUAL(rma.has_storage_media, 1);
    fx_close(&f);
}

/* ---- watch ------------------------------------------------------------------------------ */

struct producer {
    struct fx *f;
    int errors;
};

/*
 * The daemon at work: commit an event, then publish it, every few ms. Every fourth
 * is committed but not published, as if PUB had dropped it: watch must fill the gap.
 */
static int64_t produce(loop_t *loop, uint64_t id, void *data)
{
    struct producer *pr = data;
    char body[256];
    (void)loop;
    (void)id;
    uint64_t seq = add_event(pr->f->db);
    if (seq == 0) {
        pr->errors++;
        return 5;
    }
    event_body(seq, body, sizeof(body));
    if (seq % 4 != 0 && bus_publish(pr->f->bus, topics[seq % 3], body) < 0)
        pr->errors++;
    return 5;
}

/* Output lines are exactly events first..first+n-1, as "SEQ TOPIC JSON". */
static void check_watch(const char *out, uint64_t first, size_t n)
{
    char *copy = strdup(out), *save = NULL;
    size_t i = 0;
    uint64_t seq0 = first;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save), i++) {
        unsigned long long seq = strtoull(l, NULL, 10);
        if (i == 0 && first == 0)
            seq0 = seq;                 /* live only: starts wherever it joined */
        char body[256], want[400];
        event_body(seq0 + i, body, sizeof(body));
        snprintf(want, sizeof(want), "%llu %s %s", (unsigned long long)(seq0 + i),
                 topics[(seq0 + i) % 3], body);
        if (strcmp(l, want) != 0) {
            fprintf(stderr, "\n  watch line %zu: %s\n  want: %s\n", i, l, want);
            CU_FAIL("watch output");
            break;
        }
    }
    CU_ASSERT_EQUAL(i, n);
    free(copy);
}

static void test_watch(void)
{
    struct fx f;
    fx_open(&f, true);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(add_event(f.db), (uint64_t)i + 1);

    /* Stored events only. */
    char *replay[] = { "watch", "--from", "3", "--count", "8", NULL };
    th_proc_t p = rmactl(&f, NULL, replay);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.err, "");
    check_watch(p.out, 3, 8);
    th_proc_free(&p);

    /* Replay, then live with gaps: exactly 5..44, each once, in order. */
    struct producer pr = { .f = &f };
    uint64_t tid = loop_add_timer(f.loop, 0, produce, &pr);
    CU_ASSERT_FATAL(tid > 0);
    char *live[] = { "watch", "--from", "5", "--count", "40", NULL };
    p = rmactl(&f, NULL, live);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.err, "");
    check_watch(p.out, 5, 40);
    th_proc_free(&p);

    /* Live only: from wherever it joins, consecutive. */
    char *now[] = { "watch", "--count", "12", NULL };
    p = rmactl(&f, NULL, now);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.err, "");
    check_watch(p.out, 0, 12);
    th_proc_free(&p);
    CU_ASSERT_EQUAL(loop_del_timer(f.loop, tid), 0);
    CU_ASSERT_EQUAL(pr.errors, 0);

    /* No daemon on the replay endpoint. */
    bus_destroy(&f.bus);
    setenv("RMACTL_TIMEOUT_MS", "300", 1);
    p = rmactl(&f, NULL, replay);
    unsetenv("RMACTL_TIMEOUT_MS");
    char want[4200];
    snprintf(want, sizeof(want), "rmactl: watch: replay from 3: rmad is not running "
             "(no answer on %s)\n", f.cfg->replay);
    ASSERT_OUT(p, 1, "", want);
    th_proc_free(&p);
    fx_close(&f);
}

int suite_control(void)
{
    CU_pSuite s = CU_add_suite("control", NULL, NULL);
    if (!s)
        return -1;
    if (!CU_add_test(s, "rmactl status (daemon's handler)", test_status) ||
        !CU_add_test(s, "rmactl receipts", test_receipts) ||
        !CU_add_test(s, "rmactl rma import: new, idempotent, bad rows", test_rma_import) ||
        !CU_add_test(s, "rmactl: daemon not running or hung", test_not_running) ||
        !CU_add_test(s, "socket file, in use, missing directory", test_socket_setup) ||
        !CU_add_test(s, "malformed messages from python, rma.put", test_malformed) ||
        !CU_add_test(s, "rmactl rma show, list, close; rma.put lines", test_rma_lines_commands) ||
        !CU_add_test(s, "rmactl watch: replay, live, gaps", test_watch))
        return -1;
    return 0;
}
