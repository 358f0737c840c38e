/*
 * rmad: the returns-receiving daemon.
 *
 * main() wires the modules together and owns nothing else: the config, the SQLite
 * database, the policy set, one event loop, the ZeroMQ bus (PUB + replay) and control
 * socket, one station per [station] section and its scanners, and the print spooler.
 * Scanners hand scans to their station through scanner_cb(); the station commits
 * scan, receipt, label and events in one transaction; only then are the events
 * published and the spooler kicked. This file is the only place that logs what went
 * wrong, once.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon/bus.h"
#include "core/build.h"
#include "core/config.h"
#include "core/job.h"
#include "daemon/connsum.h"
#include "daemon/control.h"
#include "daemon/curve.h"
#include "daemon/forward.h"
#include "daemon/http.h"
#include "daemon/notify.h"
#include "core/log.h"
#include "core/loop.h"
#include "daemon/dispatch.h"
#include "daemon/intake.h"
#include "daemon/txn.h"
#include "daemon/retention.h"
#include "daemon/checkpoint.h"
#include "policy/policyset.h"
#include "daemon/scanq.h"
#include "daemon/spool.h"
#include "daemon/station.h"
#include "daemon/web_api.h"
#include "db/db.h"
#include "drivers/scanner.h"
#include "labels/label.h"
#include "core/msgf.h"
#include "proto/control.h"
#include "proto/event.h"

typedef struct rmad rmad_t;

/* One configured scanner line and what the daemon knows about it. */
typedef struct {
    rmad_t *d;
    size_t station;                /* index in rmad_t.stations */
    const config_scanner_t *cfg;
    scanner_t *scanner;            /* NULL when it could not be opened */
    char *error;                   /* why it could not, for rmactl status */
    unsigned long refused;         /* TCP connections refused by allow= */
    connsum_t *conns;              /* TCP: its clients' comings and goings, summed */
    uint64_t over_budget;          /* reads refused over the scan budget, since start */
} rmad_scanner_t;

typedef struct {
    station_t *st;
    const config_station_t *cfg;
    rmad_scanner_t *scanners;
    size_t n_scanners;
    rmad_t *d;
} rmad_station_t;

struct rmad {
    config_t *cfg;
    loop_t *loop;
    void *zctx;
    db_t *db;
    policyset_t *policies;
    bus_t *bus;
    curve_auth_t *auth;          /* NULL without CURVE */
    retention_t *retention;      /* NULL without retain_days */
    checkpointer_t *ckpt;        /* WAL checkpoints between scans, not inside them */
    control_t *ctl;
    spool_t *spool;
    dispatch_t *dp;              /* committed events to PUB and the web, the forwarder told */
    txn_t *txn;                  /* the loop's one unit of work */
    intake_t *intake;            /* the stations' reads, group-committed */
    station_t **st_list;         /* the stations, for the intake */
    web_api_t *api;              /* NULL without [daemon] http */
    http_t *http;
    rmad_station_t *stations;
    size_t n_stations;
    int64_t started_ms;
    notify_t *notify;            /* the service manager: READY, STATUS, watchdog */
    forward_t *fw;               /* NULL without [forward] */
    uint64_t decided;            /* receipts completed or refused since start (STATUS=) */
    bool notify_failed;          /* an sd_notify failure was logged */
    struct reload *reload;       /* a policy reload running on its thread, or NULL */
    bool reload_again;           /* SIGHUP came while one was running */
};

/* A SIGHUP's policy reload: parsed on a thread, swapped in on the loop. */
struct reload {
    rmad_t *d;
    job_t *job;
    const char *dir;             /* d->cfg->policies: the config outlives the reload */
    const char *local;           /* d->cfg->local_policies, or NULL */
    policyset_t *fresh;
    char *err;
    int rc;
};

/*
 * The PUB sink (daemon/dispatch.h): one committed event to everyone who follows events
 * live, ZeroMQ subscribers and the web's event streams (the station screens). A failed
 * send loses nothing: the event is in the outbox and subscribers replay it.
 */
static int publish_one(const dispatch_event_t *ev, void *data)
{
    rmad_t *d = data;
    if (d->http) {
        web_api_note_event(d->api, ev->topic, ev->body, ev->len);
        http_publish(d->http, ev->seq, ev->topic, ev->body, ev->len);
    }
    int rc = bus_publish(d->bus, ev->topic, ev->body);
    if (rc < 0)
        log_warning("publishing event %llu: %s (subscribers can replay it)",
                    (unsigned long long)ev->seq, strerror(-rc));
    return 0;
}

/* The forwarder reads the outbox on its thread: it is only told how far it goes. */
static void forward_wake(uint64_t committed, void *data)
{
    forward_committed(data, committed);
}

struct one_event {
    const char *topic;
    json_t *fields;
    const char *station;
};

static int one_event(txn_t *t, void *data)
{
    struct one_event *e = data;
    return txn_event(t, e->topic, e->fields, e->station, 0, loop_wall_ms());
}

/*
 * Commit one event that reports no station state change (daemon.started,
 * scanner.connected/disconnected) in its own unit of work; it is published after the commit.
 */
static int emit_event(rmad_t *d, const char *topic, json_t *fields, const char *station)
{
    struct one_event e = { topic, fields, station };
    int rc = txn_run(d->txn, one_event, &e);
    if (rc < 0)
        log_err("storing event %s: %s", topic, *db_errmsg(d->db) ? db_errmsg(d->db) : strerror(-rc));
    return rc;
}

/* A receipt's id and RMA for the logs. */
/* The PUB sink's cursor row (forward_marks): how far live subscribers were handed events. */
#define RMAD_PUB_SINK "pub"

#define RCPT_FMT "receipt %lld (%s)"
#define RCPT_ARGS(id, rma) (long long)(id), (rma) ? (rma) : "no RMA"

/*
 * Issue 10: one log line for every receipt opened, refused, cancelled (also by a
 * switch to another RMA) and completed, naming station, receipt and RMA; in the
 * journal also as fields (STATION=, RECEIPT=, RMA=, SEQ= of the transaction's last
 * event), so journalctl RECEIPT=12 finds a receipt's whole story.
 */
static void log_outcome(const char *name, const char *scanner, const station_outcome_t *o,
                        uint64_t seq)
{
    if (o->switched_from)
        log_with(LOG_INFO, LOG_FIELDS(LOG_STATION(name), LOG_RECEIPT(o->switched_from),
                                      LOG_RMA(o->switched_from_rma), LOG_SEQ(seq)),
                 "station %s: " RCPT_FMT " cancelled: switched to %s", name,
                 RCPT_ARGS(o->switched_from, o->switched_from_rma), o->rma ? o->rma : "?");
    const log_field_t *f = LOG_FIELDS(LOG_STATION(name), LOG_RECEIPT(o->receipt_id),
                                      LOG_RMA(o->rma), LOG_SEQ(seq));
    switch (o->receipt) {
    case STATION_RECEIPT_OPENED:
        log_with(LOG_INFO, f, "station %s: " RCPT_FMT " opened", name,
                 RCPT_ARGS(o->receipt_id, o->rma));
        break;
    case STATION_RECEIPT_REFUSED:
        log_with(LOG_INFO, f, "station %s: " RCPT_FMT " refused: %s", name,
                 RCPT_ARGS(o->receipt_id, o->rma), o->reason ? o->reason : "?");
        break;
    case STATION_RECEIPT_CANCELLED:
        log_with(LOG_INFO, f, "station %s: " RCPT_FMT " cancelled", name,
                 RCPT_ARGS(o->receipt_id, o->rma));
        break;
    case STATION_RECEIPT_COMPLETED:
        log_with(LOG_INFO, f, "station %s: " RCPT_FMT " completed: %s", name,
                 RCPT_ARGS(o->receipt_id, o->rma), o->disposition ? o->disposition : "?");
        break;
    case STATION_RECEIPT_NONE:
        break;
    }
    if (o->scan == STATION_SCAN_REJECTED)
        log_with(LOG_INFO, f, "station %s: %s: scan rejected: %s", name, scanner,
                 o->reason ? o->reason : "?");
}

/* The answer at the scanner that read it; a scanner without a way back has none. */
static void answer(rmad_scanner_t *rs, const char *scanner_id, scanner_reply_t word,
                   const char *reply)
{
    int rc = scanner_feedback(rs->scanner, scanner_id, word, reply);
    /*
     * No way back, gone (the disconnect says so), or a client that does not read its
     * answers (it would log one line per scan): nothing to log.
     */
    if (rc < 0 && rc != -ENOTSUP && rc != -ENOENT && rc != -EPIPE && rc != -ENOBUFS)
        log_warning("%s: no answer sent: %s", scanner_id, strerror(-rc));
}

static scanner_reply_t reply_word(const station_outcome_t *o)
{
    return o->scan == STATION_SCAN_ACCEPTED   ? SCANNER_REPLY_OK
           : o->scan == STATION_SCAN_REJECTED ? SCANNER_REPLY_REJECT
                                              : SCANNER_REPLY_DOUBLE;
}

/* A read that could not be stored, for good: logged, and answered REJECT with why. */
static void refuse_read(rmad_station_t *s, rmad_scanner_t *rs, const char *scanner_id, int rc)
{
    rmad_t *d = s->d;
    log_err("station %s: storing a scan from %s failed: %s", station_name(s->st), scanner_id,
            rc == -ENOBUFS ? "too many scans waiting for the database"
            : *db_errmsg(d->db) ? db_errmsg(d->db) : strerror(-rc));
    /* An answer for every scan: this one changed nothing and must be scanned again. */
    if (rs)
        answer(rs, scanner_id, SCANNER_REPLY_REJECT, station_unstored_reply(s->st, rc));
}

/* A read stored (rc 0) or refused for good: answered at its scanner and logged once. */
static void read_done(size_t idx, const scanq_item_t *it, int rc, const station_outcome_t *out,
                      uint64_t seq, void *data)
{
    rmad_t *d = data;
    rmad_station_t *s = &d->stations[idx];
    rmad_scanner_t *rs = it->owner;
    const char *name = station_name(s->st);
    if (rc < 0) {
        refuse_read(s, rs, it->scanner_id, rc);
        return;
    }
    if (rs)
        answer(rs, it->scanner_id, it->rejected ? SCANNER_REPLY_REJECT : reply_word(out),
               out->reply);
    if (it->rejected) {
        log_with(LOG_INFO, LOG_FIELDS(LOG_STATION(name), LOG_SEQ(seq)),
                 "station %s: %s: input rejected: %s", name, it->scanner_id, it->reason);
        return;
    }
    log_outcome(name, it->scanner_id, out, seq);
    if (out->receipt == STATION_RECEIPT_COMPLETED || out->receipt == STATION_RECEIPT_REFUSED)
        d->decided++;
    if (out->reprint_requested)
        log_info("station %s: reprint of receipt %lld's label", name, (long long)out->receipt_id);
    if (out->label_queued)
        spool_kick(d->spool);
}

/* Another process holds the database: reads wait, in order, and are stored after. */
static void db_busy(bool busy, int64_t waited_ms, void *data)
{
    (void)data;
    if (busy)
        log_warning("the database is busy (another process holds it): scans wait and are "
                    "stored in order");
    else
        log_notice("database free again: the waiting scans are stored (%lld ms)",
                   (long long)waited_ms);
}

/* Backpressure (daemon/intake.h): a station's TCP scanners stop reading, or read again. */
static void hold_station(size_t idx, bool hold, void *data)
{
    rmad_t *d = data;
    rmad_station_t *s = &d->stations[idx];
    for (size_t k = 0; k < s->n_scanners; k++)
        if (s->scanners[k].scanner)
            (void)scanner_hold(s->scanners[k].scanner, hold);
    const char *name = station_name(s->st);
    if (hold)
        log_with(LOG_NOTICE, LOG_FIELDS(LOG_STATION(name)),
                 "station %s: %d reads wait to be stored: its network scanners wait (TCP "
                 "flow control) until the queue is short again", name, INTAKE_HOLD_AT);
    else
        log_with(LOG_INFO, LOG_FIELDS(LOG_STATION(name)),
                 "station %s: its scanners are read again", name);
}

/*
 * A read arrived: queued at its station and stored with the other stations' reads at
 * the end of this loop turn (daemon/intake.h); answered once stored.
 */
static void take_read(rmad_station_t *s, rmad_scanner_t *rs, const char *scanner_id,
                      const scan_t *scan, const uint8_t *raw, size_t raw_len,
                      const char *reason)
{
    rmad_t *d = s->d;
    int rc = intake_push(d->intake, (size_t)(s - d->stations), scan, scanner_id, raw, raw_len,
                         reason, rs);
    if (rc < 0)
        refuse_read(s, rs, scanner_id, rc);
}

/*
 * A client went over its scan budget (drivers/scanner.h): logged when it starts, and
 * when it ends with the count, which is also stored (one event per run of refusals,
 * not one per refused line).
 */
static void over_budget(rmad_scanner_t *rs, const scanner_event_t *ev)
{
    rmad_t *d = rs->d;
    const char *name = station_name(d->stations[rs->station].st);
    if (ev->count == 0) {
        log_warning("station %s: %s: %s: the excess is answered REJECT and not stored",
                    name, ev->scanner_id, ev->reason ? ev->reason : "over the scan budget");
        return;
    }
    rs->over_budget += ev->count;
    log_warning("station %s: %s: %llu read%s refused over the scan budget", name,
                ev->scanner_id, (unsigned long long)ev->count, ev->count == 1 ? "" : "s");
    json_t *f = json_pack("{s:s, s:I}", "scanner", ev->scanner_id, "refused",
                          (json_int_t)ev->count);
    (void)emit_event(d, "scanner.over_budget", f, name);
    json_decref(f);
}

/* A TCP scanner's clients since the last summary (daemon/connsum.h): one stored event. */
static void clients_summary(const connsum_counts_t *c, void *data)
{
    rmad_scanner_t *rs = data;
    rmad_t *d = rs->d;
    const char *name = station_name(d->stations[rs->station].st);
    size_t now = rs->scanner ? scanner_clients(rs->scanner) : 0;
    log_msg(c->refused ? LOG_WARNING : LOG_INFO,
            "station %s: scanner %s: %llu client%s connected, %llu disconnected, %llu refused%s%s%s; "
            "%zu connected now", name, rs->scanner ? scanner_spec(rs->scanner) : rs->cfg->spec,
            (unsigned long long)c->connected, c->connected == 1 ? "" : "s",
            (unsigned long long)c->disconnected, (unsigned long long)c->refused,
            c->last_reason[0] ? " (last: " : "", c->last_reason, c->last_reason[0] ? ")" : "",
            now);
    json_t *f = json_pack("{s:s, s:I, s:I, s:I, s:I}", "scanner",
                          rs->scanner ? scanner_spec(rs->scanner) : rs->cfg->spec,
                          "clients", (json_int_t)now, "connected", (json_int_t)c->connected,
                          "disconnected", (json_int_t)c->disconnected, "refused",
                          (json_int_t)c->refused);
    if (f && c->last_reason[0])
        json_object_set_new(f, "last_reason", json_string(c->last_reason));
    (void)emit_event(d, "scanner.clients", f, name);
    json_decref(f);
}

static void scanner_cb(const scanner_event_t *ev, void *data)
{
    rmad_scanner_t *rs = data;
    rmad_t *d = rs->d;
    rmad_station_t *s = &d->stations[rs->station];
    const char *name = station_name(s->st);

    switch (ev->kind) {
    case SCANNER_EV_SCAN:
        take_read(s, rs, ev->scanner_id, ev->scan, NULL, 0, NULL);
        return;
    case SCANNER_EV_REJECTED:
        take_read(s, rs, ev->scanner_id, NULL, ev->raw, ev->raw_len, ev->reason);
        return;
    case SCANNER_EV_REFUSED:
        /* Logged, never stored: a port scan must not fill the audit trail. */
        rs->refused += (unsigned long)ev->count;
        log_warning("station %s: scanner %s: refused %lu connection%s from outside allow= "
                    "(latest from %s; %lu since start, reported at most once a minute)", name,
                    ev->scanner_id, (unsigned long)ev->count, ev->count == 1 ? "" : "s",
                    ev->peer ? ev->peer : "?", rs->refused);
        return;
    case SCANNER_EV_OVER_BUDGET:
        over_budget(rs, ev);
        return;
    case SCANNER_EV_CONNECTED:
    case SCANNER_EV_DISCONNECTED: {
        int up = ev->kind == SCANNER_EV_CONNECTED;
        if (rs->conns) {           /* a network client: summed, not stored each time */
            log_debug("station %s: scanner %s %s%s%s", name, ev->scanner_id,
                      up ? "connected" : ev->refused ? "refused" : "disconnected",
                      !up && ev->reason ? ": " : "", !up && ev->reason ? ev->reason : "");
            connsum_note(rs->conns, up ? CONNSUM_CONNECTED
                                    : ev->refused ? CONNSUM_REFUSED : CONNSUM_DISCONNECTED,
                         ev->reason);
            return;
        }
        json_t *f = json_pack("{s:s}", "scanner", ev->scanner_id);
        if (f && ev->peer)
            json_object_set_new(f, "peer", json_string(ev->peer));
        if (f && !up && ev->reason)
            json_object_set_new(f, "reason", json_string(ev->reason));
        log_info("station %s: scanner %s %s%s%s", name, ev->scanner_id,
                 up ? "connected" : "disconnected", !up && ev->reason ? ": " : "",
                 !up && ev->reason ? ev->reason : "");
        (void)emit_event(d, up ? "scanner.connected" : "scanner.disconnected", f, name);
        json_decref(f);
        return;
    }
    }
}

/* ---- labels --------------------------------------------------------------------- */

/* The spooler committed a label's outcome (or could not): log it once. */
static void spool_cb(const spool_note_t *n, void *data)
{
    (void)data;
    switch (n->kind) {
    case SPOOL_PRINTED:
        log_with(LOG_INFO, LOG_FIELDS(LOG_STATION(n->station), LOG_RECEIPT(n->receipt)),
                 "station %s: receipt %lld: label printed on %s (CUPS job %d)", n->station,
                 (long long)n->receipt, n->printer, n->cups_job);
        break;
    case SPOOL_FAILED:
        if (n->final)
            log_err("station %s: receipt %lld: label on %s failed, not retried: %s",
                    n->station, (long long)n->receipt, n->printer, n->error);
        else
            log_warning("station %s: receipt %lld: label on %s failed, retry in %llds: %s",
                        n->station, (long long)n->receipt, n->printer,
                        (long long)(n->retry_in_ms + 999) / 1000, n->error);
        break;
    case SPOOL_PRINTER:
        log_notice("printer %s: %s", n->printer, n->error);
        break;
    case SPOOL_CANCELLED:
        log_notice("station %s: receipt %lld: label %lld on %s cancelled (rmactl labels cancel)",
                   n->station, (long long)n->receipt, (long long)n->label, n->printer);
        break;
    case SPOOL_ERROR:
        log_err("print queue: label %lld: %s", (long long)n->label, n->error);
        break;
    }
}

/* {"cmd": "reprint", "receipt": N}: queue receipt N's label again at its station. */
static int reprint_cmd(const json_t *req, json_t **reply, void *data)
{
    rmad_t *d = data;
    json_t *r = json_object_get(req, "receipt");
    if (!json_is_integer(r) || json_integer_value(r) <= 0) {
        *reply = json_pack("{s:s}", "error", "reprint: \"receipt\" must be a receipt id (> 0)");
        return -EINVAL;
    }
    int64_t label = 0;
    char *err = NULL;
    int rc = spool_reprint(d->spool, json_integer_value(r), &label, &err);
    if (rc < 0) {
        *reply = json_pack("{s:s}", "error", err ? err : strerror(-rc));
        free(err);
        return rc;
    }
    log_info("receipt %lld: label queued again (rmactl reprint)", (long long)json_integer_value(r));
    *reply = json_pack("{s:I}", "label", (json_int_t)label);
    return *reply ? 0 : -ENOMEM;
}

/*
 * {"cmd": "labels", "state": "waiting"|"failed"|"printed"|"cancelled"|"all",
 *  "station": S, "limit": N} -> {"labels": [newest first]}
 */
static int labels_cmd(const json_t *req, json_t **reply, void *data)
{
    static const struct {
        const char *name;
        db_print_list_t which;
    } states[] = {
        { "all", DB_PRINT_LIST_ALL },          { "waiting", DB_PRINT_LIST_WAITING },
        { "queued", DB_PRINT_LIST_WAITING },   { "failed", DB_PRINT_LIST_FAILED },
        { "printed", DB_PRINT_LIST_PRINTED },  { "cancelled", DB_PRINT_LIST_CANCELLED },
    };
    rmad_t *d = data;
    db_print_list_t which = DB_PRINT_LIST_ALL;
    json_t *st = json_object_get(req, "state");
    if (st) {
        size_t i = 0, n = sizeof(states) / sizeof(states[0]);
        while (i < n && (!json_is_string(st) || strcmp(states[i].name, json_string_value(st)) != 0))
            i++;
        if (i == n) {
            *reply = json_pack("{s:s}", "error", "labels: state must be one of queued, "
                               "failed, printed, cancelled, all");
            return -EINVAL;
        }
        which = states[i].which;
    }
    json_t *station = json_object_get(req, "station");
    if (station && !json_is_string(station)) {
        *reply = json_pack("{s:s}", "error", "labels: station must be a station name");
        return -EINVAL;
    }
    json_t *limit = json_object_get(req, "limit");
    if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                  json_integer_value(limit) > 10000)) {
        *reply = json_pack("{s:s}", "error", "labels: limit must be an integer from 1 to 10000");
        return -EINVAL;
    }
    char *err = NULL;
    json_t *list = spool_list(d->spool, which, station ? json_string_value(station) : NULL,
                              limit ? (unsigned)json_integer_value(limit) : 50, &err);
    if (!list) {
        *reply = json_pack("{s:s}", "error", err ? err : "out of memory");
        free(err);
        return -EIO;
    }
    *reply = json_pack("{s:o}", "labels", list);
    return *reply ? 0 : -ENOMEM;
}

/* {"cmd": "labels_cancel", "label": N}: give up a waiting label. */
static int labels_cancel_cmd(const json_t *req, json_t **reply, void *data)
{
    rmad_t *d = data;
    json_t *l = json_object_get(req, "label");
    if (!json_is_integer(l) || json_integer_value(l) <= 0) {
        *reply = json_pack("{s:s}", "error", "labels cancel: \"label\" must be a label id (> 0)");
        return -EINVAL;
    }
    char *err = NULL;
    int rc = spool_cancel(d->spool, json_integer_value(l), &err);
    if (rc < 0) {
        *reply = json_pack("{s:s}", "error", err ? err : strerror(-rc));
        free(err);
        return rc;
    }
    *reply = json_pack("{s:I}", "label", (json_int_t)json_integer_value(l));
    return *reply ? 0 : -ENOMEM;
}

/* ---- control: status ------------------------------------------------------------ */

static int status_cmd(const json_t *req, json_t **reply, void *data)
{
    rmad_t *d = data;
    (void)req;   /* no arguments (registered with none) */
    uint64_t last = 0;
    int rc = db_outbox_last_seq(d->db, &last);
    if (rc < 0)
        return rc;
    json_t *stations = json_array();
    for (size_t i = 0; i < d->n_stations; i++) {
        rmad_station_t *s = &d->stations[i];
        station_status_t st;
        station_status(s->st, &st);
        json_t *scanners = json_array();
        for (size_t k = 0; k < s->n_scanners; k++) {
            rmad_scanner_t *rs = &s->scanners[k];
            json_t *sc = json_pack("{s:s}", "spec", rs->cfg->spec);
            if (rs->scanner) {
                size_t n = scanner_clients(rs->scanner);
                char detail[64];
                bool tcp = rs->cfg->kind == CONFIG_SCANNER_TCP;
                if (tcp)
                    snprintf(detail, sizeof(detail), "%zu client%s connected%s", n,
                             n == 1 ? "" : "s", rs->refused ? ", peers refused (allow=)" : "");
                else
                    snprintf(detail, sizeof(detail), "%s", n ? "device attached"
                                                             : "waiting for the device");
                json_object_set_new(sc, "state", json_string(tcp ? "listening"
                                                             : n ? "connected" : "absent"));
                json_object_set_new(sc, "detail", json_string(detail));
                if (rs->conns) {
                    connsum_counts_t c = connsum_total(rs->conns);
                    json_object_set_new(sc, "connections", json_integer((json_int_t)c.connected));
                    json_object_set_new(sc, "refused", json_integer((json_int_t)c.refused));
                }
                json_object_set_new(sc, "over_budget", json_integer((json_int_t)rs->over_budget));
            } else {
                json_object_set_new(sc, "state", json_string("unavailable"));
                json_object_set_new(sc, "detail", json_string(rs->error ? rs->error : "?"));
            }
            json_array_append_new(scanners, sc);
        }
        json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:I}", "name", st.name, "scanners", scanners,
                              "scans", (json_int_t)st.scans, "rejected", (json_int_t)st.rejected,
                              "double_reads", (json_int_t)st.double_reads);
        if (s->cfg->printer) {
            json_object_set_new(o, "printer", json_string(s->cfg->printer));
            json_object_set_new(o, "printer_state", spool_printer(d->spool, s->cfg->printer));
        }
        if (st.receipt_id > 0) {
            json_t *r = json_pack("{s:I}", "id", (json_int_t)st.receipt_id);
            if (st.rma)
                json_object_set_new(r, "rma", json_string(st.rma));
            if (st.serial)
                json_object_set_new(r, "serial", json_string(st.serial));
            /* When it was opened: rmactl status shows "since ..." (the database knows). */
            db_receipt_t rec;
            char opened[EVENT_TIME_STRLEN];
            if (db_receipt_get(d->db, st.receipt_id, &rec) == 0) {
                if (event_time_format(rec.opened_at, opened) == 0)
                    json_object_set_new(r, "opened_at", json_string(opened));
                db_receipt_clear(&rec);
            }
            json_object_set_new(o, "receipt", r);
        }
        json_array_append_new(stations, o);
    }
    spool_status_t ps;
    if ((rc = spool_status(d->spool, &ps)) < 0) {
        json_decref(stations);
        return rc;
    }
    /* started_at is the documented field (docs/control.md) that rmactl shows. */
    char started[EVENT_TIME_STRLEN];
    if (event_time_format(d->started_ms, started) < 0)
        started[0] = '\0';
    *reply = json_pack("{s:I, s:I, s:I, s:s, s:o, s:{s:i, s:i}}", "pid", (json_int_t)getpid(),
                       "last_seq", (json_int_t)last, "started_ms", (json_int_t)d->started_ms,
                       "started_at", started, "stations", stations, "labels", "queued",
                       (int)ps.queued, "submitted", (int)ps.submitted);
    if (*reply && d->fw) {
        forward_status_t fs;
        forward_status(d->fw, &fs);
        uint64_t upto = fs.forwarded > last ? last : fs.forwarded;
        json_object_set_new(*reply, "forward",
                            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}",
                                      "state", forward_state_name(fs.state),
                                      "site", d->cfg->forward->site,
                                      "stream", d->cfg->forward->stream,
                                      "server", fs.server, "forwarded_seq", (json_int_t)upto,
                                      "backlog", (json_int_t)(last - upto),
                                      "published", (json_int_t)fs.published,
                                      "duplicates", (json_int_t)fs.duplicates,
                                      "error", fs.error));
        json_t *fwj = json_object_get(*reply, "forward");
        if (fwj && d->cfg->forward->rma_feed)
            json_object_set_new(fwj, "rma_feed",
                                json_pack("{s:s, s:b, s:I, s:I, s:I}",
                                          "consumer", d->cfg->forward->rma_consumer,
                                          "connected", fs.rma_feed_up,
                                          "applied", (json_int_t)fs.rma_applied,
                                          "refused", (json_int_t)fs.rma_refused,
                                          "last_refused_seq", (json_int_t)fs.rma_last_refused));
    }
    return *reply ? 0 : -ENOMEM;
}

/* ---- the JetStream forwarder ---------------------------------------------------- */

/* The forwarder's news, logged once each (not events: they would need forwarding). */
static void forward_cb(const forward_note_t *n, void *data)
{
    rmad_t *d = data;
    const config_forward_t *c = d->cfg->forward;
    switch (n->kind) {
    case FORWARD_NOTE_CONNECTED:
        log_notice("forward.connected: %s, stream %s, site %s: resuming after seq %llu",
                   n->text, c->stream, c->site, (unsigned long long)n->seq);
        break;
    case FORWARD_NOTE_DISCONNECTED:
        log_warning("forward.disconnected: %s (events wait in the outbox; retrying)", n->text);
        break;
    case FORWARD_NOTE_ERROR:
        log_err("forward: %s (retrying)", n->text);
        break;
    case FORWARD_NOTE_SKIPPED:
        log_notice("forward: stream %s already holds site %s up to seq %llu: resuming there",
                   n->text, c->site, (unsigned long long)n->seq);
        break;
    case FORWARD_NOTE_RMA_CONNECTED:
        log_notice("forward.rma_feed: pulling %s.%s.rma.upsert from %s (consumer %s)",
                   c->subject_prefix, c->site, n->text, c->rma_consumer);
        break;
    case FORWARD_NOTE_RMA_APPLIED:
        log_info("forward.rma_feed: stream %s seq %llu applied: %s", c->stream,
                 (unsigned long long)n->seq, n->text);
        break;
    case FORWARD_NOTE_RMA_REFUSED:
        log_err("forward.rma_feed: stream %s seq %llu refused, nothing applied (terminated, "
                "kept in the stream): %s", c->stream, (unsigned long long)n->seq, n->text);
        break;
    case FORWARD_NOTE_RMA_ERROR:
        log_err("forward.rma_feed: %s (retrying)", n->text);
        break;
    }
}

/* ---- signals -------------------------------------------------------------------- */

/* rmactl rma show / list: an RMA the vendor's policy refuses today is expired. */
static int rma_expired(const db_rma_t *rma, void *data)
{
    rmad_t *d = data;
    char *why = NULL;
    int r = station_rma_refusal(d->policies, rma, &why);
    free(why);
    return r > 0;
}

/* On the reload's thread: read and check every file (no daemon state is touched). */
static void reload_work(void *arg)
{
    struct reload *r = arg;
    r->rc = policyset_load_dirs(r->dir, r->local, &r->fresh, &r->err);
}

static void reload_policies(rmad_t *d);

/*
 * On the loop: swap the new set in. All or nothing: a broken file keeps the old set
 * (the stations look the set up through d->policies on every use, so the swap is
 * atomic between two scans).
 */
static void reload_done(void *arg)
{
    struct reload *r = arg;
    rmad_t *d = r->d;
    d->reload = NULL;
    if (r->rc < 0) {
        log_err("SIGHUP: policies not reloaded, keeping the current ones: %s",
                r->err ? r->err : strerror(-r->rc));
    } else {
        policyset_destroy(&d->policies);
        d->policies = r->fresh;
        log_notice("SIGHUP: %zu policies reloaded from %s", policyset_count(r->fresh), r->dir);
    }
    free(r->err);
    free(r);
    if (d->reload_again) {      /* the files changed again while we were reading them */
        d->reload_again = false;
        reload_policies(d);
    }
}

/*
 * SIGHUP: reload the policies. Parsing a directory of YAML is bounded by the loader's
 * size and depth limits but can still take a while on a slow disk, so it runs on a
 * thread while scans are served with the current set.
 */
static void reload_policies(rmad_t *d)
{
    if (d->reload) {
        d->reload_again = true;
        return;
    }
    struct reload *r = calloc(1, sizeof(*r));
    if (!r) {
        log_err("SIGHUP: policies not reloaded: out of memory");
        return;
    }
    *r = (struct reload){ .d = d, .dir = d->cfg->policies, .local = d->cfg->local_policies };
    if (!(r->job = job_start(d->loop, reload_work, reload_done, r))) {
        log_err("SIGHUP: policies not reloaded: cannot start a thread: %s", strerror(errno));
        free(r);
        return;
    }
    d->reload = r;
}

/* SIGHUP: read curve_allowed_clients again; a bad file keeps the current keys. */
static void reload_clients(rmad_t *d)
{
    if (!d->auth)
        return;
    char *err = NULL;
    int rc = curve_auth_reload(d->auth, &err);
    if (rc < 0)
        log_err("SIGHUP: client keys not reloaded, keeping the current %zu: %s",
                curve_auth_count(d->auth), err ? err : strerror(-rc));
    else
        log_notice("SIGHUP: %d client key%s allowed from %s", rc, rc == 1 ? "" : "s",
                   d->cfg->curve_allowed_clients);
    free(err);
}

static void signal_cb(loop_t *loop, int signo, void *data)
{
    if (signo == SIGHUP) {
        reload_policies(data);
        reload_clients(data);
        return;
    }
    /* The loop is single-threaded: no transaction is half done when we get here. */
    log_notice("%s: stopping", strsignal(signo));
    loop_stop(loop);
}

/* ---- the service manager -------------------------------------------------------- */

/*
 * systemctl status shows this line (STATUS=): stations, scanners up, open receipts
 * and receipts decided since the start. Called on the notify timer, which is also
 * where an sd_notify failure surfaces: logged once, the daemon serves on.
 */
static char *status_line(void *data)
{
    rmad_t *d = data;
    int e = notify_take_error(d->notify);
    if (e < 0 && !d->notify_failed) {
        log_warning("service manager: %s (status and watchdog not sent)", strerror(-e));
        d->notify_failed = true;
    }
    size_t up = 0, scanners = 0, open = 0;
    for (size_t i = 0; i < d->n_stations; i++) {
        rmad_station_t *s = &d->stations[i];
        station_status_t st;
        station_status(s->st, &st);
        open += st.receipt_id > 0;
        for (size_t k = 0; k < s->n_scanners; k++) {
            rmad_scanner_t *rs = &s->scanners[k];
            scanners++;
            up += rs->scanner && (rs->cfg->kind == CONFIG_SCANNER_TCP ||
                                  scanner_clients(rs->scanner) > 0);
        }
    }
    char *line = NULL;
    if (asprintf(&line, "%zu station%s, %zu of %zu scanners up, %zu receipt%s open, "
                 "%llu decided since start", d->n_stations, d->n_stations == 1 ? "" : "s",
                 up, scanners, open, open == 1 ? "" : "s", (unsigned long long)d->decided) < 0)
        return NULL;
    return line;
}

/* READY=1 now that everything is up; the watchdog timer starts with it. */
static void notify_up(rmad_t *d)
{
    if (!(d->notify = notify_new(d->loop, status_line, d))) {
        log_err("service manager: out of memory");
        return;
    }
    int rc = notify_ready(d->notify);
    if (rc < 0) {
        log_warning("service manager: READY=1 not sent: %s", strerror(-rc));
        d->notify_failed = true;
    }
    if (notify_watchdog_ms(d->notify))
        log_info("watchdog: fed every %lld ms from the event loop (WatchdogSec %lld ms)",
                 (long long)(notify_watchdog_ms(d->notify) / 2),
                 (long long)notify_watchdog_ms(d->notify));
}

/* ---- start and stop ------------------------------------------------------------- */

static void rmad_free(rmad_t *d)
{
    if (d->reload)
        job_finish(&d->reload->job);   /* reload_done frees it */
    intake_destroy(&d->intake);   /* before the scanners its reads name */
    for (size_t i = 0; i < d->n_stations; i++) {
        rmad_station_t *s = &d->stations[i];
        for (size_t k = 0; k < s->n_scanners; k++) {
            scanner_destroy(&s->scanners[k].scanner);
            connsum_destroy(&s->scanners[k].conns);   /* stores what is not yet summed */
            free(s->scanners[k].error);
        }
        free(s->scanners);
        station_destroy(&s->st);
    }
    free(d->stations);
    free(d->st_list);
    notify_destroy(&d->notify);
    forward_destroy(&d->fw);   /* its thread reads the database: before db_close */
    http_destroy(&d->http);
    web_api_destroy(&d->api);
    spool_destroy(&d->spool);
    retention_destroy(&d->retention);
    control_destroy(&d->ctl);
    bus_destroy(&d->bus);
    curve_auth_destroy(&d->auth);   /* after the CURVE sockets it answers for */
    txn_destroy(&d->txn);
    dispatch_destroy(&d->dp);     /* stores the PUB cursor */
    policyset_destroy(&d->policies);
    checkpointer_destroy(&d->ckpt);
    db_close(&d->db);
    loop_destroy(&d->loop);
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    config_destroy(&d->cfg);
    label_release_fonts();   /* the font caches labels filled: a clean exit under ASan */
    log_flush();             /* a count of repeated lines is never lost */
}

/*
 * Open a station's scanners. A scanner that cannot be opened is logged and reported
 * by rmactl status; the daemon serves the others (it never exits because of one).
 */
static int open_scanners(rmad_t *d, size_t idx)
{
    rmad_station_t *s = &d->stations[idx];
    scan_limits_t lim = { .max_len = d->cfg->max_scan_len };
    s->scanners = calloc(s->cfg->nscanners, sizeof(*s->scanners));
    if (!s->scanners)
        return -ENOMEM;
    s->n_scanners = s->cfg->nscanners;
    for (size_t k = 0; k < s->n_scanners; k++) {
        rmad_scanner_t *rs = &s->scanners[k];
        rs->d = d;
        rs->station = idx;
        rs->cfg = &s->cfg->scanners[k];
        switch (rs->cfg->kind) {
        case CONFIG_SCANNER_TCP:
            if (!(rs->conns = connsum_new(d->loop, CONNSUM_EVERY_MS, clients_summary, rs)))
                return -ENOMEM;
            rs->scanner = scanner_new_tcp(d->loop, rs->cfg, &lim, scanner_cb, rs, &rs->error);
            break;
        case CONFIG_SCANNER_USB:
            rs->scanner = scanner_new_usb(d->loop, rs->cfg, &lim, scanner_cb, rs, &rs->error);
            break;
        case CONFIG_SCANNER_SERIAL:
            rs->scanner = scanner_new_serial(d->loop, rs->cfg, &lim, scanner_cb, rs, &rs->error);
            break;
        }
        if (!rs->scanner)
            log_err("station %s: scanner %s: %s", s->cfg->name, rs->cfg->spec,
                    rs->error ? rs->error : "cannot open");
        else
            log_info("station %s: scanner %s ready", s->cfg->name, scanner_spec(rs->scanner));
    }
    return 0;
}

/* A CURVE handshake the ZAP handler refused: logged (repeats are counted by the log). */
static void curve_refused(const char *client_z85, const char *address, void *data)
{
    (void)data;
    if (*client_z85)
        log_warning("CURVE: refused client key %s from %s: not in curve_allowed_clients",
                    client_z85, *address ? address : "?");
    else
        log_warning("CURVE: refused a client without CURVE from %s", *address ? address : "?");
}

/*
 * The event bus, with CURVE when the config has keys: the ZAP handler first (without
 * it libzmq would let every key in), then the two sockets.
 */
static int start_bus(rmad_t *d, char **err)
{
    const config_t *cfg = d->cfg;
    uint8_t secret[CURVE_KEY_BYTES];
    int rc;
    if (cfg->curve_secret_key) {
        char *why = NULL;
        if ((rc = curve_key_read(cfg->curve_secret_key, secret, &why)) < 0) {
            *err = msgf("curve_secret_key %s", why ? why : strerror(-rc));
            free(why);
            return rc;
        }
        struct stat st;
        if (stat(cfg->curve_secret_key, &st) == 0 && (st.st_mode & 077))
            log_warning("curve_secret_key %s: readable by others (mode %04o): chmod 600 it",
                        cfg->curve_secret_key, (unsigned)(st.st_mode & 07777));
        d->auth = curve_auth_new(d->zctx, d->loop, cfg->curve_allowed_clients, curve_refused,
                                 d, err);
        if (!d->auth) {
            explicit_bzero(secret, sizeof(secret));
            return -EIO;
        }
        if (curve_auth_count(d->auth) == 0)
            log_warning("curve_allowed_clients %s: no *.pub keys: no client can subscribe or "
                        "replay", cfg->curve_allowed_clients);
    }
    d->bus = bus_new_curve(d->zctx, d->loop, d->db, cfg->pub, cfg->replay,
                           cfg->curve_secret_key ? secret : NULL, err);
    explicit_bzero(secret, sizeof(secret));
    if (!d->bus)
        return -EIO;
    if (d->auth)
        log_notice("CURVE on %s and %s: %zu client key%s allowed", cfg->pub, cfg->replay,
                   curve_auth_count(d->auth), curve_auth_count(d->auth) == 1 ? "" : "s");
    bus_set_subscribers(d->bus, cfg->retain_subscribers, cfg->nretain_subscribers);
    return 0;
}

/* Retention waits while scans wait: they go first. */
static int retention_busy(void *data)
{
    rmad_t *d = data;
    return intake_waiting(d->intake) > 0;
}

static void retention_report(const retention_report_t *r, void *data)
{
    rmad_t *d = data;
    if (r->error)
        log_err("retention (retain_days %d): %s; trying again in an hour", d->cfg->retain_days,
                r->error);
    else if (r->scans || r->events)
        log_notice("retention: deleted %llu scans and %llu events older than %d days%s",
                   (unsigned long long)r->scans, (unsigned long long)r->events,
                   d->cfg->retain_days,
                   r->keep_seq != UINT64_MAX ? " (events not yet acknowledged kept)" : "");
}

/*
 * control_group: the socket file's group, so that its members (and root) can run
 * rmactl while the daemon runs as another user. Mode 0660 is set at bind.
 */
static int set_control_group(rmad_t *d, char **err)
{
    const char *group = d->cfg->control_group;
    const char *path = d->cfg->control + 6;     /* ipc:// */
    if (!group)
        return 0;
    struct group *g = getgrnam(group);
    if (!g) {
        *err = msgf("control_group %s: no such group", group);
        return -ENOENT;
    }
    if (chown(path, (uid_t)-1, g->gr_gid) < 0) {
        int rc = -errno;
        *err = msgf("control_group %s: chown %s: %s (the daemon must run as root or be a "
                    "member of the group)", group, path, strerror(-rc));
        return rc;
    }
    return 0;
}

/* The web pages: the same status, labels and actions as the control socket. */
static int start_web(rmad_t *d, char **err)
{
    if (!(d->api = web_api_new(d->loop, d->db, d->cfg, &d->policies))) {
        *err = strdup("web: out of memory");
        return -ENOMEM;
    }
    (void)web_api_register(d->api, "status", status_cmd, d);
    (void)web_api_register(d->api, "labels", labels_cmd, d);
    (void)web_api_register(d->api, "reprint", reprint_cmd, d);
    (void)web_api_register(d->api, "labels_cancel", labels_cancel_cmd, d);
    if (!(d->http = http_new(d->loop, d->db, d->cfg, web_api_handle, d->api, err)))
        return -EIO;
    log_notice("web pages on %s (station screens: %sstation/NAME)", http_url(d->http),
               http_url(d->http));
    return 0;
}

static int rmad_start(rmad_t *d)
{
    char *err = NULL;
    int rc;
    static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, 0 };

    if (!(d->loop = loop_new()) || !(d->zctx = zmq_ctx_new())) {
        log_err("out of memory");
        return -ENOMEM;
    }
    if ((rc = loop_add_signals(d->loop, sigs, signal_cb, d)) < 0) {
        log_err("signals: %s", strerror(-rc));
        return rc;
    }
    if ((rc = db_check_location(d->cfg->database, &err)) < 0 ||
        (rc = db_open(d->cfg->database, &d->db, &err)) < 0)
        goto fail;
    /* The loop never waits long for another process's lock: reads wait in the intake. */
    if ((rc = db_set_busy_timeout(d->db, DB_DAEMON_BUSY_MS)) < 0) {
        log_err("database: %s", db_errmsg(d->db));
        return rc;
    }
    if (!(d->dp = dispatch_new(d->loop, d->db, &err))) {
        rc = -EIO;
        goto fail;
    }
    if (!(d->txn = txn_new(d->db, d->dp))) {
        log_err("out of memory");
        return -ENOMEM;
    }
    if (!(d->ckpt = checkpointer_new(d->loop, d->db, CHECKPOINT_IDLE_MS))) {
        log_err("checkpointer: out of memory");
        return -ENOMEM;
    }
    if ((rc = policyset_load_dirs(d->cfg->policies, d->cfg->local_policies, &d->policies, &err)) < 0)
        goto fail;
    if ((rc = start_bus(d, &err)) < 0)
        goto fail;
    if ((rc = bus_set_heartbeat(d->bus, d->cfg->heartbeat_ms)) < 0) {
        log_err("bus heartbeat: %s", strerror(-rc));
        return rc;
    }
    uint64_t backlog = 0;
    if ((rc = dispatch_add_sink(d->dp, RMAD_PUB_SINK, publish_one, d, &backlog)) < 0) {
        log_err("event dispatch: %s", *db_errmsg(d->db) ? db_errmsg(d->db) : strerror(-rc));
        return rc;
    }
    if (backlog)
        log_notice("publishing %llu event%s committed before the daemon stopped and not "
                   "yet published", (unsigned long long)backlog, backlog == 1 ? "" : "s");
    if (!(d->ctl = control_new(d->zctx, d->loop, d->txn, d->cfg->control, d->cfg->rma_pattern, &err))) {
        rc = -EIO;
        goto fail;
    }
    if ((rc = set_control_group(d, &err)) < 0)
        goto fail;
    control_set_rma_expiry(d->ctl, rma_expired, d);
    /* Each command with the arguments it takes: any other is refused (daemon/control.h). */
    static const char *const reprint_keys[] = { "receipt", NULL };
    static const char *const labels_keys[] = { "state", "station", "limit", NULL };
    static const char *const cancel_keys[] = { "label", NULL };
    if ((rc = control_register(d->ctl, "status", NULL, status_cmd, d)) < 0 ||
        (rc = control_register(d->ctl, "reprint", reprint_keys, reprint_cmd, d)) < 0 ||
        (rc = control_register(d->ctl, "labels", labels_keys, labels_cmd, d)) < 0 ||
        (rc = control_register(d->ctl, "labels_cancel", cancel_keys, labels_cancel_cmd, d)) < 0) {
        log_err("control: %s", strerror(-rc));
        return rc;
    }
    d->stations = calloc(d->cfg->nstations, sizeof(*d->stations));
    if (!d->stations)
        return -ENOMEM;
    d->n_stations = d->cfg->nstations;
    for (size_t i = 0; i < d->n_stations; i++) {
        d->stations[i].cfg = &d->cfg->stations[i];
        d->stations[i].d = d;
        d->stations[i].st = station_new(&d->cfg->stations[i], d->cfg, d->db, &d->policies, &err);
        if (!d->stations[i].st) {
            rc = -EINVAL;
            goto fail;
        }
    }
    if (!(d->st_list = calloc(d->n_stations ? d->n_stations : 1, sizeof(*d->st_list)))) {
        log_err("out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->n_stations; i++)
        d->st_list[i] = d->stations[i].st;
    if (!(d->intake = intake_new(d->loop, d->txn, d->st_list, d->n_stations, read_done, db_busy,
                                 hold_station, d))) {
        log_err("out of memory");
        return -ENOMEM;
    }
    d->started_ms = loop_wall_ms();
    json_t *f = json_pack("{s:s, s:I}", "version", build_version(), "pid", (json_int_t)getpid());
    rc = emit_event(d, "daemon.started", f, NULL);
    json_decref(f);
    if (rc < 0)
        return rc;
    /* After daemon.started: labels left from the last run are followed or printed now. */
    if (!(d->spool = spool_new(d->loop, d->db, d->txn, d->cfg, spool_cb, d, &err))) {
        rc = -EIO;
        goto fail;
    }
    if (d->cfg->http_host && (rc = start_web(d, &err)) < 0)
        goto fail;
    if (d->cfg->retain_days &&
        !(d->retention = retention_new(d->loop, d->db, d->cfg->retain_days,
                                       d->cfg->retain_subscribers, d->cfg->nretain_subscribers,
                                       retention_busy, retention_report, d))) {
        log_err("retention: out of memory");
        return -ENOMEM;
    }
    if (d->cfg->forward &&
        !(d->fw = forward_new(d->loop, d->cfg->database, d->cfg->forward, d->cfg->rma_pattern,
                              forward_cb, d, &err))) {
        rc = -EIO;
        goto fail;
    }
    if (d->fw && (rc = dispatch_add_waker(d->dp, forward_wake, d->fw)) < 0) {
        log_err("event dispatch: %s", strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < d->n_stations; i++)
        if ((rc = open_scanners(d, i)) < 0)
            return rc;
    return 0;
fail:
    log_err("%s", err ? err : strerror(-rc));
    free(err);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rmad --config FILE        run the daemon\n"
            "       rmad --check-config FILE  validate a config (and its policies), then exit\n"
            "       rmad --default-config     run on the built-in default config (make run)\n"
            "       rmad --print-default-config\n"
            "       rmad --version | --help\n"
            "\n"
            "The installed config is %s (see rmad.conf(5)). Exit status: 0 stopped\n"
            "cleanly (or the config is valid), 1 failed to start or run, 2 bad config or usage.\n"
            "Signals: SIGTERM/SIGINT stop between two scans, SIGHUP reloads the policies.\n",
            build_installed_config());
}

/* Load the config named on the command line, or the built-in one (base: the source tree). */
static int load_config(const char *path, config_t **cfg)
{
    char *err = NULL;
    int rc = path ? config_load(path, cfg, &err) : config_load_default(cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "rmad: %s\n", err ? err : strerror(-rc));
        free(err);
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", required_argument, NULL, 'k' },
        { "default-config", no_argument, NULL, 'd' },
        { "print-default-config", no_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    int mode = 0, c;
    /* One malloc arena for every thread (docs/limits.md, peak RSS): glibc gives each
     * thread that allocates (an import's, the forward thread, ZeroMQ's) its own arena,
     * and each keeps its high-water pages; one more arena cost 1.3 MB of peak RSS in a
     * 100,000-row import. The threads allocate little and seldom: no contention. */
    (void)mallopt(M_ARENA_MAX, 1);
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
        case 'k':
            path = optarg;
            mode = c;
            break;
        case 'd':
        case 'p':
            mode = c;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("rmad %s\n", build_version());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!mode || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (mode == 'p') {
        fputs(config_default_text(), stdout);
        return 0;
    }

    rmad_t d = { 0 };
    int rc;
    if (load_config(path, &d.cfg) < 0)
        return 2;
    if (mode == 'k') {
        policyset_t *ps = NULL;
        char *err = NULL;
        rc = policyset_load_dirs(d.cfg->policies, d.cfg->local_policies, &ps, &err);
        if (rc < 0)
            fprintf(stderr, "rmad: %s\n", err ? err : strerror(-rc));
        free(err);
        err = NULL;
        int dbrc = db_check_location(d.cfg->database, &err);
        if (dbrc < 0) {
            fprintf(stderr, "rmad: database %s\n", err ? err : strerror(-dbrc));
            rc = dbrc;
        }
        free(err);
        err = NULL;
        if (d.cfg->curve_secret_key) {
            uint8_t key[CURVE_KEY_BYTES];
            int krc = curve_key_read(d.cfg->curve_secret_key, key, &err);
            explicit_bzero(key, sizeof(key));
            if (krc < 0)
                fprintf(stderr, "rmad: curve_secret_key %s\n", err ? err : strerror(-krc));
            free(err);
            err = NULL;
            int crc = curve_clients_check(d.cfg->curve_allowed_clients, &err);
            if (crc < 0)
                fprintf(stderr, "rmad: %s\n", err ? err : strerror(-crc));
            free(err);
            if (krc < 0 || crc < 0)
                rc = krc < 0 ? krc : crc;
        }
        policyset_destroy(&ps);
        config_destroy(&d.cfg);
        return rc < 0 ? 2 : 0;
    }

    log_set_level(d.cfg->log_level);
    /* Before the spooler's CUPS thread exists: labels show the dock's local time. */
    if ((rc = config_timezone_apply(d.cfg)) < 0) {
        fprintf(stderr, "rmad: timezone: %s\n", strerror(-rc));
        config_destroy(&d.cfg);
        return 1;
    }
    /* A scanner client that vanishes must not kill the daemon with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    rc = rmad_start(&d);
    if (rc == 0) {
        log_notice("rmad %s: %zu station%s, events on %s, replay on %s, control on %s",
                   build_version(), d.n_stations, d.n_stations == 1 ? "" : "s", d.cfg->pub,
                   d.cfg->replay, d.cfg->control);
        notify_up(&d);
        rc = loop_run(d.loop);
        if (rc < 0)
            log_err("event loop: %s", strerror(-rc));
        if (d.notify)
            (void)notify_stopping(d.notify, rc < 0 ? "event loop failed" : "stopping");
    }
    rmad_free(&d);
    return rc < 0 ? 1 : 0;
}
