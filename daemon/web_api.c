/* The JSON API of the web pages: routing of /api/ paths and the replies from the database. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon/checklist.h"
#include "policy/policy.h"
#include "daemon/web_api.h"
#include "labels/label.h"
#include "labels/receipt.h"
#include "labels/symbol.h"

enum { CMD_STATUS, CMD_LABELS, CMD_REPRINT, CMD_CANCEL, CMD_COUNT };
static const char *const cmd_names[CMD_COUNT] = { "status", "labels", "reprint",
                                                  "labels_cancel" };

typedef struct {
    char *station;
    char *body;             /* the station's last scan.accepted / scan.rejected event */
} last_scan_t;

typedef struct {
    int64_t receipt;
    uint8_t *png;
    size_t len;
} label_png_t;

/*
 * One label to render on the worker. The label_receipt_t lives here, in place: its
 * label points into itself, so it is never copied.
 */
typedef struct render_job {
    int64_t receipt;
    label_receipt_t lr;
    label_size_t size;
    int dpi;
    http_later_t *later;
    int rc;                 /* label_render's */
    uint8_t *png;
    size_t len;
    struct render_job *next;
} render_job_t;

struct web_api {
    db_t *db;
    const config_t *cfg;
    policyset_t **policies;
    struct {
        control_fn fn;
        void *data;
    } cmds[CMD_COUNT];
    last_scan_t *last;      /* one per configured station */
    label_png_t cache[WEB_API_LABEL_CACHE];
    size_t cache_next;

    /* The label worker: jobs in, results out, an eventfd on the loop says "done". */
    loop_t *loop;
    pthread_t worker;
    bool worker_up;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    render_job_t *todo, *done;
    unsigned inflight;      /* jobs handed over and not yet answered */
    bool stop;
    int efd;
};

static void *render_main(void *arg)
{
    web_api_t *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->todo && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop)
            break;
        render_job_t *j = a->todo;
        a->todo = j->next;
        pthread_mutex_unlock(&a->mu);
        j->rc = label_render(&j->lr.label, LABEL_PNG, j->size, j->dpi, &j->png, &j->len);
        pthread_mutex_lock(&a->mu);
        j->next = a->done;
        a->done = j;
        uint64_t one = 1;
        (void)!write(a->efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void job_free(render_job_t *j)
{
    label_receipt_clear(&j->lr);
    free(j->png);
    free(j);
}

static void cache_put(web_api_t *a, int64_t id, const uint8_t *png, size_t len);

/* On the loop: answer every rendered label. */
static void render_done(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    web_api_t *a = data;
    uint64_t n;
    (void)!read(fd, &n, sizeof(n));
    pthread_mutex_lock(&a->mu);
    render_job_t *list = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        render_job_t *j = list;
        list = j->next;
        a->inflight--;
        http_reply_t rep = { .status = 500, .type = "application/json" };
        if (j->rc == 0) {
            cache_put(a, j->receipt, j->png, j->len);
            rep = (http_reply_t){ .status = 200, .type = "image/png", .body = j->png,
                                  .len = j->len };
            j->png = NULL;
        } else {
            char *b = NULL;
            if (asprintf(&b, "{\"error\":\"label: %s\"}", strerror(-j->rc)) >= 0) {
                rep.body = (uint8_t *)b;
                rep.len = strlen(b);
            }
        }
        http_later_reply(j->later, &rep);
        job_free(j);
    }
}

web_api_t *web_api_new(loop_t *loop, db_t *db, const config_t *cfg, policyset_t **policies_ref)
{
    web_api_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->last = calloc(cfg->nstations, sizeof(*a->last)))) {
        free(a);
        return NULL;
    }
    a->db = db;
    a->cfg = cfg;
    a->policies = policies_ref;
    a->loop = loop;
    for (size_t i = 0; i < cfg->nstations; i++)
        a->last[i].station = cfg->stations[i].name;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0 || loop_add_fd(loop, a->efd, LOOP_IN, render_done, a) < 0 ||
        pthread_create(&a->worker, NULL, render_main, a) != 0) {
        web_api_destroy(&a);
        return NULL;
    }
    a->worker_up = true;
    return a;
}

void web_api_destroy(web_api_t **ap)
{
    if (!ap || !*ap)
        return;
    web_api_t *a = *ap;
    if (a->worker_up) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->worker, NULL);
    }
    /* Jobs not answered: their tickets died with the web server (http_destroy first). */
    render_job_t *lists[2] = { a->todo, a->done };
    for (int k = 0; k < 2; k++)
        while (lists[k]) {
            render_job_t *j = lists[k];
            lists[k] = j->next;
            job_free(j);
        }
    if (a->efd >= 0) {
        (void)loop_del_fd(a->loop, a->efd);
        (void)close(a->efd);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    for (size_t i = 0; i < a->cfg->nstations; i++)
        free(a->last[i].body);
    free(a->last);
    for (size_t i = 0; i < WEB_API_LABEL_CACHE; i++)
        free(a->cache[i].png);
    free(a);
    *ap = NULL;
}

int web_api_register(web_api_t *a, const char *cmd, control_fn fn, void *data)
{
    for (int i = 0; i < CMD_COUNT; i++)
        if (strcmp(cmd, cmd_names[i]) == 0) {
            a->cmds[i].fn = fn;
            a->cmds[i].data = data;
            return 0;
        }
    return -EINVAL;
}

static const config_station_t *station_cfg(const web_api_t *a, const char *name, size_t *idx)
{
    for (size_t i = 0; name && i < a->cfg->nstations; i++)
        if (strcmp(a->cfg->stations[i].name, name) == 0) {
            if (idx)
                *idx = i;
            return &a->cfg->stations[i];
        }
    return NULL;
}

void web_api_note_event(web_api_t *a, const char *topic, const char *body, size_t len)
{
    if (!a || strncmp(topic, "scan.", 5) != 0)
        return;
    json_t *j = json_loadb(body, len, 0, NULL);
    size_t i;
    if (station_cfg(a, json_string_value(json_object_get(j, "station")), &i)) {
        char *copy = strndup(body, len);
        if (copy) {   /* out of memory: the screen keeps showing the previous one */
            free(a->last[i].body);
            a->last[i].body = copy;
        }
    }
    json_decref(j);
}

/* ---- replies -------------------------------------------------------------------- */

static void reply_json(http_reply_t *rep, int status, json_t *j)
{
    char *b = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!b) {
        rep->status = 503;
        rep->type = "text/plain; charset=utf-8";
        return;
    }
    rep->status = status;
    rep->type = "application/json";
    rep->body = (uint8_t *)b;
    rep->len = strlen(b);
}

static void reply_err(http_reply_t *rep, int status, const char *msg)
{
    reply_json(rep, status, json_pack("{s:s}", "error", msg));
}

/* A control function's errno as an HTTP status. */
static int status_for(int rc)
{
    switch (rc) {
    case -ENOENT:
        return 404;
    case -EINVAL:
    case -ENODEV:
        return 400;
    case -EPERM:
    case -EBUSY:
    case -EEXIST:
        return 409;
    default:
        return 500;
    }
}

/* Run the daemon's control command `which` on req and send its reply. */
static void run_cmd(web_api_t *a, int which, json_t *req, http_reply_t *rep)
{
    if (!a->cmds[which].fn || !req) {
        json_decref(req);
        reply_err(rep, 503, "not available");
        return;
    }
    json_t *out = NULL;
    int rc = a->cmds[which].fn(req, &out, a->cmds[which].data);
    json_decref(req);
    if (rc < 0) {
        const char *e = json_string_value(json_object_get(out, "error"));
        json_t *err = json_pack("{s:s}", "error", e ? e : strerror(-rc));
        json_decref(out);
        reply_json(rep, status_for(rc), err);
        return;
    }
    reply_json(rep, 200, out ? out : json_object());
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t ms)
{
    if (ms == DB_TIME_NONE || ms <= 0)
        return json_null();
    char buf[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

/* A stored JSON text (checklist, result) as JSON, or null. */
static json_t *stored_json(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *receipt_json(const db_receipt_t *r)
{
    json_t *o = json_pack("{s:I, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)r->id,
                          "station", r->station, "rma", str_or_null(r->rma), "state",
                          db_receipt_state_name(r->state), "opened", time_json(r->opened_at),
                          "closed", time_json(r->closed_at), "serial", str_or_null(r->serial),
                          "disposition", str_or_null(r->disposition), "reason",
                          str_or_null(r->reason));
    return o;
}

/* ---- one station's screen ------------------------------------------------------- */

/*
 * The checklist as items a person reads, each with its state, in the order the dock
 * works: from the stored checklist JSON of the open receipt.
 */
static json_t *checklist_items(const json_t *c)
{
    static const struct {
        const char *key, *label;
    } items[] = {
        { "serial", "Serial number" },  { "packaging", "Packaging" }, { "foam", "Foam" },
        { "seal", "Seal" },             { "rma_marked_on_package", "RMA on package" },
        { "serial_label", "Serial label" }, { "fault", "Fault" },     { "component", "Component" },
        { "findings", "Findings" },
    };
    json_t *a = json_array();
    for (size_t i = 0; a && i < sizeof(items) / sizeof(items[0]); i++) {
        json_t *v = json_object_get(c, items[i].key);
        if (!v)
            continue;
        char buf[256];
        const char *state = buf;
        bool done = true;
        if (json_is_string(v)) {
            state = json_string_value(v);
        } else if (json_is_boolean(v)) {
            state = json_is_true(v) ? "yes" : "no";
        } else if (json_is_array(v)) {
            size_t n = 0, k;
            json_t *e;
            buf[0] = '\0';
            json_array_foreach(v, k, e) {
                const char *s = json_string_value(e);
                if (s && n + strlen(s) + 3 < sizeof(buf))
                    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "", s);
            }
            if (!n)
                state = "none";
        } else {
            state = "not scanned yet";
            done = false;
        }
        if (strcmp(items[i].key, "component") == 0 && !done) {
            state = "whole unit";
            done = true;
        }
        if (strcmp(items[i].key, "fault") == 0 && strcmp(state, "not_tested") == 0)
            done = false;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b}", "item", items[i].key, "label",
                                           items[i].label, "state", state, "done", done));
    }
    return a;
}

/* The accessories the vendor's policy expects with this product, with their barcodes. */
static json_t *expected_accessories(web_api_t *a, const db_rma_t *rma, const json_t *checklist)
{
    json_t *out = json_array();
    const policy_t *p = *a->policies && rma->vendor[0]
                            ? policyset_for_vendor(*a->policies, rma->vendor) : NULL;
    const char *const *names = p ? policy_accessories(p, rma->model[0] ? rma->model : NULL,
                                                      rma->family[0] ? rma->family : NULL)
                                 : NULL;
    json_t *present = json_object_get(checklist, "accessories_present");
    for (size_t i = 0; out && names && names[i]; i++) {
        char code[SYMBOL_TEXT_MAX + 1];
        int n = snprintf(code, sizeof(code), "ACC-%s", names[i]);
        for (int k = 0; k < n && k < (int)sizeof(code); k++)
            code[k] = (char)toupper((unsigned char)code[k]);
        bool got = false;
        size_t k;
        json_t *e;
        json_array_foreach(present, k, e)
            if (json_is_string(e) && strcasecmp(json_string_value(e), names[i]) == 0)
                got = true;
        json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "name", names[i], "barcode",
                                             code, "present", got));
    }
    return out;
}

/*
 * What the unit still needs before CMD-DONE, from the stations' own checklist module
 * (daemon/checklist.h, issue 10): "next" (what to scan next, the words the scanner's
 * answer uses) and, on each item and accessory, "needed" when the vendor's policy
 * decides on it and the worker has not answered it yet.
 */
static void add_needs(web_api_t *a, const db_receipt_t *r, const db_rma_t *rma, json_t *rj,
                      json_t *items)
{
    static const struct {
        const char *item;
        unsigned bit;
    } bits[] = { { "packaging", POLICY_ITEM_PACKAGING }, { "seal", POLICY_ITEM_SEAL },
                 { "fault", POLICY_ITEM_FAULT } };
    checklist_t c;
    if (!r->checklist || checklist_parse(r->checklist, &c) < 0)
        return;
    const policy_t *p = *a->policies && rma ? policyset_for_vendor(*a->policies, rma->vendor)
                                            : NULL;
    checklist_needs_t n;
    char *next = NULL;
    if (checklist_needs(p, &c, rma, &n) == 0 && checklist_next(&n, &next) == 0) {
        json_object_set_new(rj, "next", json_string(next));
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            const char *k = json_string_value(json_object_get(it, "item"));
            bool need = strcmp(k, "serial") == 0 && n.serial;
            for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++)
                if (strcmp(k, bits[b].item) == 0 && (n.items & bits[b].bit))
                    need = true;
            json_object_set_new(it, "needed", json_boolean(need));
            if (need) {   /* the contract's default is shown as what it is: unanswered */
                json_object_set_new(it, "done", json_false());
                if (strcmp(k, "serial") != 0)
                    json_object_set_new(it, "state", json_string("to answer"));
            }
        }
        json_t *acc = json_object_get(rj, "accessories"), *e;
        json_array_foreach(acc, i, e) {
            bool need = false;
            for (size_t m = 0; m < n.n_missing; m++)
                if (strcasecmp(n.missing[m], json_string_value(json_object_get(e, "name"))) == 0)
                    need = (n.items & POLICY_ITEM_ACCESSORIES) != 0;
            json_object_set_new(e, "needed", json_boolean(need));
        }
    }
    free(next);
    checklist_needs_free(&n);
    checklist_free(&c);
}

static void station_screen(web_api_t *a, const char *name, http_reply_t *rep)
{
    size_t idx;
    const config_station_t *sc = station_cfg(a, name, &idx);
    if (!sc) {
        reply_err(rep, 404, "no such station");
        return;
    }
    uint64_t last_seq = 0;
    db_receipt_t r = { 0 };
    int rc = db_outbox_last_seq(a->db, &last_seq);
    if (rc == 0)
        rc = db_receipt_get_open(a->db, sc->name, &r);
    if (rc < 0 && rc != -ENOENT) {
        reply_err(rep, 500, db_errmsg(a->db));
        return;
    }
    json_t *o = json_pack("{s:s, s:I, s:b}", "station", sc->name, "last_seq", (json_int_t)last_seq,
                          "printer", sc->printer != NULL);
    json_t *last = a->last[idx].body ? json_loads(a->last[idx].body, 0, NULL) : NULL;
    json_object_set_new(o, "last_scan", last ? last : json_null());
    if (rc == -ENOENT) {
        json_object_set_new(o, "receipt", json_null());
        reply_json(rep, 200, o);
        return;
    }
    json_t *rj = receipt_json(&r);
    json_t *checklist = stored_json(r.checklist);
    db_rma_t rma;
    db_rma_init(&rma);
    if (r.rma && db_rma_get(a->db, r.rma, &rma) == 0) {
        json_object_set_new(rj, "vendor", json_string(rma.vendor));
        json_object_set_new(rj, "model", rma.model[0] ? json_string(rma.model) : json_null());
        json_object_set_new(rj, "expected_serial",
                            rma.expected_serial[0] ? json_string(rma.expected_serial) : json_null());
        /* Unit k of n of the RMA (issue 11's lines): the open one is the next after those
         * received. */
        if (rma.authorised > 1)
            json_object_set_new(rj, "unit", json_pack("{s:i, s:i, s:i, s:i}", "k",
                                                      rma.received + 1, "n", rma.authorised,
                                                      "line", r.line, "lines", rma.lines));
    }
    if (!json_object_get(rj, "serial") || json_is_null(json_object_get(rj, "serial")))
        json_object_set(rj, "serial", json_object_get(checklist, "serial") ?
                                          json_object_get(checklist, "serial") : json_null());
    json_t *items = checklist_items(checklist);
    json_object_set_new(rj, "accessories", expected_accessories(a, &rma, checklist));
    add_needs(a, &r, r.rma && rma.number[0] ? &rma : NULL, rj, items);
    json_object_set_new(rj, "items", items);
    json_object_set_new(rj, "checklist", checklist);
    json_object_set_new(o, "receipt", rj);
    db_receipt_clear(&r);
    reply_json(rep, 200, o);
}

/* ---- receipts ------------------------------------------------------------------- */

static int list_one(const db_receipt_t *r, void *data)
{
    return json_array_append_new(data, receipt_json(r)) < 0 ? -ENOMEM : 0;
}

/* "2026-11-21" (UTC day) -> its first millisecond; -1 when not such a date. */
static int64_t day_ms(const char *s)
{
    struct tm tm = { 0 };
    const char *end = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static unsigned arg_uint(const http_request_t *req, const char *key, unsigned dflt,
                         unsigned max)
{
    const char *v = http_arg(req, key);
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
        return dflt;
    unsigned long n = strtoul(v, NULL, 10);
    return n > max ? max : (unsigned)n;
}

static const char *arg_str(const http_request_t *req, const char *key)
{
    const char *v = http_arg(req, key);
    return v && *v ? v : NULL;
}

static void receipts_search(web_api_t *a, const http_request_t *req, http_reply_t *rep)
{
    db_receipt_filter_t f = {
        .rma = arg_str(req, "rma"),
        .serial = arg_str(req, "serial"),
        .station = arg_str(req, "station"),
        .state = arg_str(req, "state"),
        .disposition = arg_str(req, "disposition"),
    };
    const char *from = arg_str(req, "from"), *to = arg_str(req, "to");
    if ((from && (f.from_ms = day_ms(from)) < 0) || (to && (f.to_ms = day_ms(to)) < 0)) {
        reply_err(rep, 400, "from and to are dates: YYYY-MM-DD");
        return;
    }
    if (f.to_ms > 0)
        f.to_ms += 86400000;   /* "to" names the last day included */
    unsigned per = arg_uint(req, "per_page", 50, WEB_API_PAGE_MAX);
    unsigned page = arg_uint(req, "page", 1, 1000000);
    if (per == 0)
        per = 1;
    if (page == 0)
        page = 1;
    json_t *list = json_array();
    uint64_t total = 0;
    int rc = list ? db_receipt_search(a->db, &f, per, (page - 1) * per, list_one, list, &total)
                  : -ENOMEM;
    if (rc < 0) {
        json_decref(list);
        reply_err(rep, 500, db_errmsg(a->db));
        return;
    }
    reply_json(rep, 200, json_pack("{s:o, s:I, s:i, s:i}", "receipts", list, "total",
                                   (json_int_t)total, "page", (int)page, "per_page", (int)per));
}

/* A scan's raw bytes: hex, so a NUL or an escape sequence shows as what it was. */
static json_t *hex_json(const void *raw, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *h = malloc(2 * len + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        h[2 * i] = digits[((const uint8_t *)raw)[i] >> 4];
        h[2 * i + 1] = digits[((const uint8_t *)raw)[i] & 15];
    }
    h[2 * len] = '\0';
    json_t *j = json_string(h);
    free(h);
    return j;
}

static int scan_one(const db_scan_t *s, void *data)
{
    json_t *a = data;
    if (json_array_size(a) >= WEB_API_SCANS_MAX)
        return 1;
    json_t *o = json_pack("{s:I, s:o, s:s, s:o, s:s, s:b, s:o, s:o, s:o}", "id", (json_int_t)s->id,
                          "at", time_json(s->at), "scanner", s->scanner, "symbology",
                          str_or_null(s->symbology), "kind", s->kind, "accepted", s->accepted,
                          "reason", str_or_null(s->reason), "text", str_or_null(s->text), "raw",
                          hex_json(s->raw, s->raw_len));
    return json_array_append_new(a, o) < 0 ? -ENOMEM : 0;
}

static int event_one(const db_event_t *ev, void *data)
{
    json_t *j = json_loadb(ev->body, ev->body_len, 0, NULL);
    return json_array_append_new(data, j ? j : json_null()) < 0 ? -ENOMEM : 0;
}

struct labels_of {
    int64_t receipt;
    json_t *list;
};

static int label_one(const db_print_job_t *j, void *data)
{
    struct labels_of *l = data;
    if (j->receipt_id != l->receipt)
        return 0;
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:i, s:o, s:o, s:o}", "label", (json_int_t)j->id,
                          "printer", j->printer, "why", db_print_why_name(j->why), "state",
                          db_print_state_name(j->state), "attempts", j->attempts, "error",
                          str_or_null(j->last_error), "created", time_json(j->created_at), "done",
                          time_json(j->done_at));
    return json_array_append_new(l->list, o) < 0 ? -ENOMEM : 0;
}

static void receipt_detail(web_api_t *a, int64_t id, http_reply_t *rep)
{
    db_receipt_t r = { 0 };
    int rc = db_receipt_get(a->db, id, &r);
    if (rc == -ENOENT) {
        reply_err(rep, 404, "no such receipt");
        return;
    }
    if (rc < 0) {
        reply_err(rep, 500, db_errmsg(a->db));
        return;
    }
    json_t *o = json_pack("{s:o}", "receipt", receipt_json(&r));
    json_t *scans = json_array(), *events = json_array();
    struct labels_of lo = { .receipt = id, .list = json_array() };
    json_object_set_new(o, "checklist", stored_json(r.checklist));
    json_object_set_new(o, "result", stored_json(r.result));
    db_rma_t rma;
    if (r.rma && db_rma_get(a->db, r.rma, &rma) == 0)
        json_object_set_new(o, "rma", json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "number",
                                                rma.number, "vendor", rma.vendor, "model",
                                                rma.model, "family", rma.family, "expected_serial",
                                                rma.expected_serial, "kind",
                                                str_or_null(db_rma_kind_name(rma.kind))));
    else
        json_object_set_new(o, "rma", json_null());
    rc = db_scan_foreach_receipt(a->db, id, scan_one, scans);
    if (rc >= 0)
        rc = db_outbox_foreach_receipt(a->db, id, WEB_API_EVENTS_MAX, event_one, events);
    if (rc >= 0)
        rc = db_print_foreach(a->db, DB_PRINT_LIST_ALL, r.station, 0, label_one, &lo);
    db_receipt_clear(&r);
    json_object_set_new(o, "scans", scans);
    json_object_set_new(o, "events", events);
    json_object_set_new(o, "labels", lo.list);
    if (rc < 0) {
        json_decref(o);
        reply_err(rep, 500, db_errmsg(a->db));
        return;
    }
    bool has_label = json_is_string(json_object_get(json_object_get(o, "receipt"), "state")) &&
                     (strcmp(json_string_value(json_object_get(json_object_get(o, "receipt"),
                                                               "state")), "completed") == 0 ||
                      strcmp(json_string_value(json_object_get(json_object_get(o, "receipt"),
                                                               "state")), "refused") == 0);
    json_object_set_new(o, "label_png", has_label ? json_sprintf("/api/receipts/%lld/label.png",
                                                                  (long long)id)
                                                  : json_null());
    reply_json(rep, 200, o);
}

static void cache_put(web_api_t *a, int64_t id, const uint8_t *png, size_t len)
{
    label_png_t *slot = &a->cache[a->cache_next];
    a->cache_next = (a->cache_next + 1) % WEB_API_LABEL_CACHE;
    free(slot->png);
    slot->receipt = id;
    slot->len = len;
    if ((slot->png = malloc(len)))   /* out of memory: simply not cached */
        memcpy(slot->png, png, len);
}

/*
 * The label as the station's printer gets it, as PNG (the renderer of rmactl label).
 * Rendering takes tens of milliseconds, so it is done on the worker thread while the
 * request waits (http_later); the receipt is read here, on the loop, which owns the
 * database. At most WEB_API_RENDER_MAX wait at once (503 beyond). A closed receipt's
 * label never changes: the last few are kept.
 */
static void receipt_label(web_api_t *a, const http_request_t *req, int64_t id,
                          http_reply_t *rep)
{
    for (size_t i = 0; i < WEB_API_LABEL_CACHE; i++) {
        label_png_t *c = &a->cache[i];
        if (c->png && c->receipt == id) {
            uint8_t *copy = malloc(c->len);
            if (!copy) {
                reply_err(rep, 503, "out of memory");
                return;
            }
            memcpy(copy, c->png, c->len);
            rep->status = 200;
            rep->type = "image/png";
            rep->body = copy;
            rep->len = c->len;
            return;
        }
    }
    if (a->inflight >= WEB_API_RENDER_MAX) {
        reply_err(rep, 503, "busy rendering labels, retry");
        return;
    }
    render_job_t *j = calloc(1, sizeof(*j));
    char *err = NULL;
    int rc = j ? label_receipt_load(a->db, id, &j->lr, &err) : -ENOMEM;
    if (rc < 0) {
        free(j);
        reply_err(rep, rc == -ENOENT ? 404 : rc == -EINVAL ? 409 : 500, err ? err : strerror(-rc));
        free(err);
        return;
    }
    const config_station_t *sc = station_cfg(a, j->lr.receipt.station, NULL);
    j->receipt = id;
    j->size = sc && sc->label_size == CONFIG_LABEL_2X1 ? LABEL_2X1 : LABEL_4X6;
    j->dpi = sc ? sc->label_dpi : 203;
    if (!(j->later = http_later(req))) {
        job_free(j);
        reply_err(rep, 503, "out of memory");
        return;
    }
    a->inflight++;
    pthread_mutex_lock(&a->mu);
    j->next = NULL;
    render_job_t **t = &a->todo;   /* in order: the first asked is the first drawn */
    while (*t)
        t = &(*t)->next;
    *t = j;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void barcode_png(const http_request_t *req, http_reply_t *rep)
{
    const char *text = http_arg(req, "text");
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = text ? symbol_code128_png(text, strlen(text), 2, 40, &png, &len) : -EINVAL;
    if (rc < 0) {
        reply_err(rep, rc == -EINVAL ? 400 : 500,
                  rc == -EINVAL ? "text: 1 to 80 characters Code 128 can carry" : strerror(-rc));
        return;
    }
    rep->status = 200;
    rep->type = "image/png";
    rep->body = png;
    rep->len = len;
}

/* ---- routing -------------------------------------------------------------------- */

/* "/api/receipts/12/label.png" with prefix "/api/receipts/": 12 and rest "/label.png". */
static int64_t path_id(const char *path, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return -1;
    const char *p = path + n;
    size_t d = strspn(p, "0123456789");
    if (d == 0 || d > 18)
        return -1;
    *rest = p + d;
    return strtoll(p, NULL, 10);
}

void web_api_handle(const http_request_t *req, http_reply_t *rep, void *data)
{
    web_api_t *a = data;
    const char *path = req->path, *rest = NULL;
    bool get = strcmp(req->method, "GET") == 0;
    int64_t id;

    if (get && strcmp(path, "/api/status") == 0) {
        run_cmd(a, CMD_STATUS, json_pack("{s:s}", "cmd", "status"), rep);
    } else if (get && strncmp(path, "/api/stations/", 14) == 0) {
        station_screen(a, path + 14, rep);
    } else if (get && strcmp(path, "/api/receipts") == 0) {
        receipts_search(a, req, rep);
    } else if ((id = path_id(path, "/api/receipts/", &rest)) > 0) {
        if (get && !*rest)
            receipt_detail(a, id, rep);
        else if (get && strcmp(rest, "/label.png") == 0)
            receipt_label(a, req, id, rep);
        else if (!get && strcmp(rest, "/reprint") == 0)
            run_cmd(a, CMD_REPRINT, json_pack("{s:s, s:I}", "cmd", "reprint", "receipt",
                                              (json_int_t)id), rep);
        else
            reply_err(rep, 404, "not found");
    } else if (get && strcmp(path, "/api/labels") == 0) {
        json_t *q = json_pack("{s:s, s:s}", "cmd", "labels", "state",
                              arg_str(req, "state") ? arg_str(req, "state") : "all");
        if (q && arg_str(req, "station"))
            json_object_set_new(q, "station", json_string(arg_str(req, "station")));
        if (q)
            json_object_set_new(q, "limit", json_integer(arg_uint(req, "limit", 100, 10000)));
        run_cmd(a, CMD_LABELS, q, rep);
    } else if (!get && (id = path_id(path, "/api/labels/", &rest)) > 0 &&
               strcmp(rest, "/cancel") == 0) {
        run_cmd(a, CMD_CANCEL, json_pack("{s:s, s:I}", "cmd", "labels_cancel", "label",
                                         (json_int_t)id), rep);
    } else if (get && strcmp(path, "/api/barcode") == 0) {
        barcode_png(req, rep);
    } else {
        reply_err(rep, 404, "not found");
    }
}
