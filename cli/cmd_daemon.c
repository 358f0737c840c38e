/*
 * rmactl's commands that talk to a running rmad: status, receipts, labels, reprint, rma
 * import (control socket) and watch (event bus). The config named by --config FILE, or
 * $RMAD_CONFIG, or the installed one, says where the sockets are.
 *
 * Exit status: 0 done; 1 the daemon is unreachable or failed; 2 bad input (usage,
 * a request the daemon refused as invalid, a CSV with bad rows).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "cli/client.h"
#include "cli/rmactl.h"
#include "daemon/bus.h"
#include "daemon/curve.h"
#include "proto/control.h"

/* ---- options ------------------------------------------------------------------------ */

enum { OPT_JSON = 1u, OPT_LIMIT = 2u, OPT_FROM = 4u, OPT_COUNT = 8u, OPT_STATE = 16u,
       OPT_STATION = 32u, OPT_VENDOR = 64u, OPT_REASON = 128u, OPT_POLICY_VERSION = 256u,
       OPT_KEYS = 512u };

#define MAX_ARGS 2

struct opts {
    const char *config;
    bool json;
    uint64_t limit, from, count;
    const char *state, *station, *vendor, *reason;
    const char *policy_version;
    const char *key, *server_key;     /* watch: CURVE key files */
    bool has_limit, has_from;
    const char *args[MAX_ARGS];
    int nargs;
};

static int parse_u64(const char *what, const char *s, uint64_t min, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || !(*s >= '0' && *s <= '9') || *end || errno || v < min) {
        cli_error("%s: expected a whole number >= %llu, got '%s'", what,
                  (unsigned long long)min, s ? s : "");
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/*
 * Options of a command from argv[1] on (argv[0] is its name): --config FILE always,
 * the ones in `allowed`, and at most nargs_max positional arguments. Returns 0 or
 * -EINVAL after printing the problem.
 */
static int parse_opts(int argc, char **argv, unsigned allowed, int nargs_max,
                      const char *usage, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nlen = eq && a[0] == '-' ? (size_t)(eq - a) : strlen(a);
#define IS(name) (strlen(name) == nlen && strncmp(a, name, nlen) == 0)
        bool takes = IS("--config") || (IS("--limit") && (allowed & OPT_LIMIT)) ||
                     (IS("--from") && (allowed & OPT_FROM)) ||
                     (IS("--count") && (allowed & OPT_COUNT)) ||
                     (IS("--state") && (allowed & OPT_STATE)) ||
                     (IS("--station") && (allowed & OPT_STATION)) ||
                     (IS("--vendor") && (allowed & OPT_VENDOR)) ||
                     (IS("--reason") && (allowed & OPT_REASON)) ||
                     (IS("--policy-version") && (allowed & OPT_POLICY_VERSION)) ||
                     ((IS("--key") || IS("--server-key")) && (allowed & OPT_KEYS));
        if (takes) {
            if (eq && a[0] == '-')
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                cli_error("%s: %.*s needs a value", argv[0], (int)nlen, a);
                return -EINVAL;
            }
        }
        int rc = 0;
        if (IS("--config"))
            o->config = val;
        else if (takes && IS("--limit"))
            rc = parse_u64("--limit", val, 1, &o->limit), o->has_limit = true;
        else if (takes && IS("--from"))
            rc = parse_u64("--from", val, 0, &o->from), o->has_from = true;
        else if (takes && IS("--count"))
            rc = parse_u64("--count", val, 1, &o->count);
        else if (takes && IS("--state"))
            o->state = val;
        else if (takes && IS("--station"))
            o->station = val;
        else if (takes && IS("--vendor"))
            o->vendor = val;
        else if (takes && IS("--reason"))
            o->reason = val;
        else if (takes && IS("--policy-version"))
            o->policy_version = val;
        else if (takes && IS("--key"))
            o->key = val;
        else if (takes && IS("--server-key"))
            o->server_key = val;
        else if (strcmp(a, "--json") == 0 && (allowed & OPT_JSON))
            o->json = true;
        else if (a[0] == '-' && a[1] != '\0') {
            cli_error("%s: unknown option '%s' (usage: rmactl %s)", argv[0], a, usage);
            return -EINVAL;
        } else if (o->nargs < nargs_max) {
            o->args[o->nargs++] = a;
        } else {
            cli_error("%s: unexpected argument '%s' (usage: rmactl %s)", argv[0], a, usage);
            return -EINVAL;
        }
#undef IS
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- talking to the daemon ------------------------------------------------------------ */

struct session {
    config_t *cfg;
    void *zctx;
};

/* Load the config and make a ZeroMQ context. Returns 0 or an exit code (printed). */
static int session_open(const struct opts *o, struct session *s)
{
    char *err = NULL;
    memset(s, 0, sizeof(*s));
    int rc = client_load_config(o->config, &s->cfg, &err);
    if (rc < 0) {
        cli_error("%s", err ? err : "out of memory");
        free(err);
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    s->zctx = zmq_ctx_new();
    if (!s->zctx) {
        cli_error("zmq: %s", zmq_strerror(errno));
        config_destroy(&s->cfg);
        return EXIT_FAIL;
    }
    return 0;
}

static void session_close(struct session *s)
{
    if (s->zctx)
        (void)zmq_ctx_term(s->zctx);
    config_destroy(&s->cfg);
}

/* The exit code for a failed call, after printing "rmactl: WHAT: message". */
static int call_failed(const char *what, int rc, const char *err, const json_t *reply)
{
    cli_error("%s: %s", what, err ? err : strerror(-rc));
    if (rc == -EREMOTEIO) {
        control_code_t c = control_reply_code(reply);
        return c == CONTROL_BAD_REQUEST || c == CONTROL_INVALID ? EXIT_BADINPUT : EXIT_FAIL;
    }
    return rc == -EMSGSIZE ? EXIT_BADINPUT : EXIT_FAIL;
}

/*
 * Send req (consumed) and print the whole reply when --json. Returns 0 with *reply
 * set, or an exit code (printed).
 */
static int call(struct session *s, const char *what, json_t *req, json_t **reply)
{
    char *err = NULL;
    json_t *r = NULL;
    if (!req) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    int rc = client_call(s->zctx, s->cfg->control, req, client_timeout_ms(), &r, &err);
    json_decref(req);
    if (rc < 0) {
        int code = call_failed(what, rc, err, r);
        free(err);
        json_decref(r);
        return code;
    }
    *reply = r;
    return 0;
}

static int print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int ok = text && puts(text) >= 0;
    free(text);
    return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- printing ------------------------------------------------------------------------- */

/* Text from the daemon, with control characters shown as '?' (it goes to a terminal). */
static void put_text(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* Width in terminal columns, roughly: UTF-8 code points. */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void put_cell(const char *s, size_t width, bool last)
{
    put_text(s);
    if (last)
        return;
    for (size_t w = text_width(s); w < width + 2; w++)
        putchar(' ');
}

static const char *str_or(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : dflt;
}

static int finish_output(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("stdout: write error");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* ---- status --------------------------------------------------------------------------- */

static void print_status(const json_t *r)
{
    json_t *pid = json_object_get(r, "pid");
    const char *started = str_or(r, "started_at", NULL);
    if (json_is_integer(pid) || started) {
        printf("rmad");
        if (json_is_integer(pid))
            printf(" pid %" JSON_INTEGER_FORMAT, json_integer_value(pid));
        if (started) {
            printf(", started ");
            put_text(started);
        }
        putchar('\n');
    }
    json_t *seq = json_object_get(r, "last_seq");
    if (json_is_integer(seq))
        printf("last seq: %" JSON_INTEGER_FORMAT "\n", json_integer_value(seq));

    size_t i, open = 0;
    json_t *st;
    json_array_foreach(json_object_get(r, "stations"), i, st) {
        printf("station ");
        put_text(str_or(st, "name", "?"));
        if (str_or(st, "printer", NULL)) {
            printf(" (printer ");
            put_text(str_or(st, "printer", ""));
            putchar(')');
        }
        putchar('\n');
        json_t *ps = json_object_get(st, "printer_state");
        if (json_is_object(ps)) {
            printf("  printer ");
            put_text(str_or(st, "printer", "?"));
            printf(": ");
            put_text(str_or(ps, "state", "unknown"));
            if (str_or(ps, "reasons", NULL)) {
                printf(": ");
                put_text(str_or(ps, "reasons", ""));
            }
            if (str_or(ps, "message", NULL)) {
                printf(" (");
                put_text(str_or(ps, "message", ""));
                putchar(')');
            }
            putchar('\n');
        }
        size_t j;
        json_t *sc;
        json_array_foreach(json_object_get(st, "scanners"), j, sc) {
            printf("  scanner ");
            put_text(str_or(sc, "spec", "?"));
            printf(": ");
            put_text(str_or(sc, "state", "?"));
            if (str_or(sc, "detail", NULL)) {
                printf(" (");
                put_text(str_or(sc, "detail", ""));
                putchar(')');
            }
            putchar('\n');
        }
        json_t *rc = json_object_get(st, "receipt");
        if (json_is_object(rc)) {
            open++;
            printf("  open receipt %" JSON_INTEGER_FORMAT ": ",
                   json_integer_value(json_object_get(rc, "id")));
            put_text(str_or(rc, "rma", "no RMA"));
            printf(", since ");
            put_text(str_or(rc, "opened_at", "?"));
            putchar('\n');
        } else {
            printf("  no open receipt\n");
        }
    }
    printf("open receipts: %zu\n", open);
    json_t *labels = json_object_get(r, "labels");
    if (json_is_object(labels))
        printf("labels waiting: %" JSON_INTEGER_FORMAT " queued, %" JSON_INTEGER_FORMAT
               " at the printer\n",
               json_integer_value(json_object_get(labels, "queued")),
               json_integer_value(json_object_get(labels, "submitted")));
    json_t *fw = json_object_get(r, "forward");
    if (json_is_object(fw)) {
        printf("forward: ");
        put_text(str_or(fw, "state", "?"));
        printf(" (stream ");
        put_text(str_or(fw, "stream", "?"));
        printf(", site ");
        put_text(str_or(fw, "site", "?"));
        if (*str_or(fw, "server", "")) {
            printf(", ");
            put_text(str_or(fw, "server", ""));
        }
        printf("), forwarded up to seq %" JSON_INTEGER_FORMAT ", backlog %" JSON_INTEGER_FORMAT
               " event%s\n", json_integer_value(json_object_get(fw, "forwarded_seq")),
               json_integer_value(json_object_get(fw, "backlog")),
               json_integer_value(json_object_get(fw, "backlog")) == 1 ? "" : "s");
        if (*str_or(fw, "error", "")) {
            printf("forward error: ");
            put_text(str_or(fw, "error", ""));
            putchar('\n');
        }
        json_t *feed = json_object_get(fw, "rma_feed");
        if (json_is_object(feed)) {
            json_int_t refused = json_integer_value(json_object_get(feed, "refused"));
            printf("rma feed: %s (consumer ",
                   json_is_true(json_object_get(feed, "connected")) ? "pulling" : "not connected");
            put_text(str_or(feed, "consumer", "?"));
            printf("), %" JSON_INTEGER_FORMAT " applied, %" JSON_INTEGER_FORMAT " refused",
                   json_integer_value(json_object_get(feed, "applied")), refused);
            if (refused)
                printf(" (last: stream seq %" JSON_INTEGER_FORMAT ")",
                       json_integer_value(json_object_get(feed, "last_refused_seq")));
            putchar('\n');
        }
    }
}

int cmd_status(int argc, char **argv)
{
    struct opts o;
    struct session s;
    json_t *reply = NULL;
    if (parse_opts(argc, argv, OPT_JSON, 0, "[--config FILE] status [--json]", &o) < 0)
        return EXIT_BADINPUT;
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    rc = call(&s, "status", control_request_new("status"), &reply);
    if (rc == 0) {
        if (o.json)
            rc = print_json(reply);
        else
            print_status(reply);
        rc = rc ? rc : finish_output();
    }
    json_decref(reply);
    session_close(&s);
    return rc;
}

/* ---- receipts ------------------------------------------------------------------------- */

#define RECEIPT_COLS 6

static void print_receipts(const json_t *list)
{
    static const char *const head[RECEIPT_COLS] = { "ID", "STATION", "RMA", "STATE",
                                                    "DISPOSITION", "TIME" };
    size_t n = json_array_size(list);
    size_t width[RECEIPT_COLS];
    char ids[32];

    if (n == 0) {
        printf("no receipts\n");
        return;
    }
    for (int c = 0; c < RECEIPT_COLS; c++)
        width[c] = strlen(head[c]);
    /* Two passes: widths, then rows. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (int c = 0; c < RECEIPT_COLS; c++)
                put_cell(head[c], width[c], c == RECEIPT_COLS - 1);
            putchar('\n');
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *r = json_array_get(list, i);
            snprintf(ids, sizeof(ids), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(r, "id")));
            const char *cell[RECEIPT_COLS] = {
                ids, str_or(r, "station", "-"), str_or(r, "rma", "-"), str_or(r, "state", "-"),
                str_or(r, "disposition", "-"),
                str_or(r, "closed_at", str_or(r, "opened_at", "-")),
            };
            for (int c = 0; c < RECEIPT_COLS; c++) {
                if (pass == 0) {
                    size_t w = text_width(cell[c]);
                    width[c] = w > width[c] ? w : width[c];
                } else {
                    put_cell(cell[c], width[c], c == RECEIPT_COLS - 1);
                }
            }
            if (pass == 1)
                putchar('\n');
        }
    }
}

int cmd_receipts(int argc, char **argv)
{
    struct opts o;
    struct session s;
    json_t *reply = NULL;
    if (parse_opts(argc, argv, OPT_JSON | OPT_LIMIT | OPT_POLICY_VERSION, 0,
                   "[--config FILE] receipts [--limit N] [--policy-version V] [--json]", &o) < 0)
        return EXIT_BADINPUT;
    if (o.has_limit && o.limit > CONTROL_RECEIPTS_MAX) {
        cli_error("receipts: --limit: at most %d", CONTROL_RECEIPTS_MAX);
        return EXIT_BADINPUT;
    }
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    json_t *req = control_request_new("receipts");
    if (req && o.has_limit && json_object_set_new(req, "limit", json_integer((json_int_t)o.limit)) < 0) {
        json_decref(req);
        req = NULL;
    }
    /* Issue 13: the receipts decided by one version of a policy file. */
    if (req && o.policy_version &&
        json_object_set_new(req, "policy_version", json_string(o.policy_version)) < 0) {
        json_decref(req);
        req = NULL;
    }
    rc = call(&s, "receipts", req, &reply);
    if (rc == 0) {
        if (o.json)
            rc = print_json(reply);
        else
            print_receipts(json_object_get(reply, "receipts"));
        rc = rc ? rc : finish_output();
    }
    json_decref(reply);
    session_close(&s);
    return rc;
}

/* ---- labels --------------------------------------------------------------------------- */

static void print_labels(const json_t *list)
{
    static const char *const head[] = { "LABEL", "RECEIPT", "STATION", "PRINTER", "STATE",
                                        "ATTEMPTS", "JOB", "ERROR" };
    enum { NCOL = sizeof(head) / sizeof(head[0]) };
    size_t w[NCOL], i;
    json_t *l;
    char num[4][24];
    for (size_t c = 0; c < NCOL; c++)
        w[c] = strlen(head[c]);
    /* Two passes: widths, then rows. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (size_t c = 0; c < NCOL; c++)
                put_cell(head[c], w[c], c == NCOL - 1);
        if (pass == 1)
            putchar('\n');
        json_array_foreach(list, i, l) {
            snprintf(num[0], sizeof(num[0]), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(l, "label")));
            snprintf(num[1], sizeof(num[1]), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(l, "receipt")));
            snprintf(num[2], sizeof(num[2]), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(l, "attempts")));
            json_t *job = json_object_get(l, "job");
            snprintf(num[3], sizeof(num[3]), json_is_integer(job) ? "%" JSON_INTEGER_FORMAT : "-",
                     json_integer_value(job));
            const char *cells[NCOL] = { num[0], num[1], str_or(l, "station", "?"),
                                        str_or(l, "printer", "?"), str_or(l, "state", "?"),
                                        num[2], num[3], str_or(l, "error", "-") };
            for (size_t c = 0; c < NCOL; c++) {
                if (pass == 0 && text_width(cells[c]) > w[c])
                    w[c] = text_width(cells[c]);
                else if (pass == 1)
                    put_cell(cells[c], w[c], c == NCOL - 1);
            }
            if (pass == 1)
                putchar('\n');
        }
    }
    if (json_array_size(list) == 0)
        printf("no labels\n");
}

static int labels_cancel(const struct opts *o, struct session *s)
{
    uint64_t id;
    if (o->nargs != 2) {
        cli_error("labels cancel: which label? (usage: rmactl labels cancel LABEL)");
        return EXIT_BADINPUT;
    }
    if (parse_u64("labels cancel: LABEL", o->args[1], 1, &id) < 0 || id > INT64_MAX)
        return EXIT_BADINPUT;
    /*
     * A label of a failing printer is handed to CUPS for a moment at each attempt; the
     * daemon says "busy" then. Asking again a few times spares the supervisor that.
     */
    for (int attempt = 0;; attempt++) {
        json_t *req = control_request_new("labels_cancel"), *reply = NULL;
        if (!req || json_object_set_new(req, "label", json_integer((json_int_t)id)) < 0) {
            json_decref(req);
            cli_error("out of memory");
            return EXIT_FAIL;
        }
        char *err = NULL;
        int rc = client_call(s->zctx, s->cfg->control, req, client_timeout_ms(), &reply, &err);
        json_decref(req);
        if (rc == -EREMOTEIO && control_reply_code(reply) == CONTROL_BUSY && attempt < 20) {
            free(err);
            json_decref(reply);
            (void)nanosleep(&(struct timespec){ .tv_nsec = 250 * 1000000L }, NULL);
            continue;
        }
        if (rc < 0) {
            int code = call_failed("labels cancel", rc, err, reply);
            free(err);
            json_decref(reply);
            return code;
        }
        json_decref(reply);
        printf("label %" PRIu64 " cancelled\n", id);
        return finish_output();
    }
}

int cmd_labels(int argc, char **argv)
{
    static const char use[] =
        "[--config FILE] labels [--state queued|failed|printed|cancelled|all] [--station S] "
        "[--limit N] [--json] | labels cancel LABEL";
    struct opts o;
    struct session s;
    json_t *reply = NULL;
    if (parse_opts(argc, argv, OPT_JSON | OPT_LIMIT | OPT_STATE | OPT_STATION, 2, use, &o) < 0)
        return EXIT_BADINPUT;
    bool cancel = o.nargs > 0 && strcmp(o.args[0], "cancel") == 0;
    if (o.nargs > 0 && !cancel) {
        cli_error("labels: unknown subcommand '%s' (usage: rmactl %s)", o.args[0], use);
        return EXIT_BADINPUT;
    }
    if (o.state && strcmp(o.state, "queued") != 0 && strcmp(o.state, "failed") != 0 &&
        strcmp(o.state, "printed") != 0 && strcmp(o.state, "cancelled") != 0 &&
        strcmp(o.state, "all") != 0) {
        cli_error("labels: --state: one of queued, failed, printed, cancelled, all; got '%s'",
                  o.state);
        return EXIT_BADINPUT;
    }
    if (o.has_limit && o.limit > 10000) {
        cli_error("labels: --limit: at most 10000");
        return EXIT_BADINPUT;
    }
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    if (cancel) {
        rc = labels_cancel(&o, &s);
        session_close(&s);
        return rc;
    }
    json_t *req = control_request_new("labels");
    if (req && ((o.state && json_object_set_new(req, "state", json_string(o.state)) < 0) ||
                (o.station && json_object_set_new(req, "station", json_string(o.station)) < 0) ||
                (o.has_limit &&
                 json_object_set_new(req, "limit", json_integer((json_int_t)o.limit)) < 0))) {
        json_decref(req);
        req = NULL;
    }
    rc = call(&s, "labels", req, &reply);
    if (rc == 0) {
        if (o.json)
            rc = print_json(reply);
        else
            print_labels(json_object_get(reply, "labels"));
        rc = rc ? rc : finish_output();
    }
    json_decref(reply);
    session_close(&s);
    return rc;
}

/* ---- reprint -------------------------------------------------------------------------- */

int cmd_reprint(int argc, char **argv)
{
    static const char use[] = "[--config FILE] reprint RECEIPT";
    struct opts o;
    struct session s;
    json_t *reply = NULL;
    uint64_t id;
    if (parse_opts(argc, argv, 0, 1, use, &o) < 0)
        return EXIT_BADINPUT;
    if (o.nargs != 1) {
        cli_error("reprint: which receipt? (usage: rmactl %s)", use);
        return EXIT_BADINPUT;
    }
    if (parse_u64("reprint: RECEIPT", o.args[0], 1, &id) < 0 || id > INT64_MAX)
        return EXIT_BADINPUT;
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    json_t *req = control_request_new("reprint");
    if (req && json_object_set_new(req, "receipt", json_integer((json_int_t)id)) < 0) {
        json_decref(req);
        req = NULL;
    }
    rc = call(&s, "reprint", req, &reply);
    if (rc == 0) {
        printf("receipt %" PRIu64 ": label %" JSON_INTEGER_FORMAT " queued\n", id,
               json_integer_value(json_object_get(reply, "label")));
        rc = finish_output();
    }
    json_decref(reply);
    session_close(&s);
    return rc;
}

/* ---- rma import ----------------------------------------------------------------------- */

/*
 * Offset of the first byte that is not part of valid UTF-8 text (a NUL counts as
 * invalid: JSON strings on the control socket cannot carry it), or len.
 */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return i;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

static unsigned line_at(const char *s, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off; i++)
        line += s[i] == '\n' || (s[i] == '\r' && s[i + 1] != '\n');
    return line;
}

/* Print each row error as "FILE:LINE: message", on stderr. */
static void print_import_errors(const char *name, const json_t *reply)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(reply, "errors"), i, e) {
        json_int_t line = json_integer_value(json_object_get(e, "line"));
        const char *msg = str_or(e, "message", "?");
        if (line > 0)
            fprintf(stderr, "%s:%" JSON_INTEGER_FORMAT ": %s\n", name, line, msg);
        else
            fprintf(stderr, "%s: %s\n", name, msg);
    }
    json_int_t total = json_integer_value(json_object_get(reply, "errors_total"));
    size_t shown = json_array_size(json_object_get(reply, "errors"));
    if (total > 0 && (size_t)total > shown)
        fprintf(stderr, "%s: %" JSON_INTEGER_FORMAT " more errors not shown\n", name,
                total - (json_int_t)shown);
}

static int rma_import(struct session *s, const char *path)
{
    const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
    size_t len = 0;
    char *text = cli_read_input(path, CONTROL_IMPORT_MAX, &len);
    if (!text)
        return EXIT_BADINPUT;
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len) {
        fprintf(stderr, "%s:%u: not UTF-8 text (byte %zu)\n", name, line_at(text, bad), bad + 1);
        free(text);
        return EXIT_BADINPUT;
    }
    /* In parts of CONTROL_IMPORT_CHUNK bytes, cut between UTF-8 characters (each part
     * is a JSON string): rmad spools them and never holds the file whole (issue 17). */
    char *err = NULL;
    json_t *reply = NULL;
    json_int_t upload = 0;
    size_t off = 0;
    int rc;
    for (;;) {
        size_t n = len - off;
        if (n > CONTROL_IMPORT_CHUNK) {
            n = CONTROL_IMPORT_CHUNK;
            while (n > 0 && ((unsigned char)text[off + n] & 0xc0) == 0x80)
                n--;
        }
        bool last = off + n == len;
        json_t *req = json_pack("{s:s,s:s%}", "cmd", "rma.import", "csv", text + off, n);
        if (req && !last && json_object_set_new(req, "more", json_true()) < 0)
            json_decref(req), req = NULL;
        if (req && upload && json_object_set_new(req, "upload", json_integer(upload)) < 0)
            json_decref(req), req = NULL;
        if (!req) {
            free(text);
            cli_error("out of memory");
            return EXIT_FAIL;
        }
        /* rmad imports on a thread and answers when done: a big file takes seconds. */
        int wait = getenv("RMACTL_TIMEOUT_MS") ? client_timeout_ms()
                   : last ? CONTROL_IMPORT_TIMEOUT_MS : CONTROL_TIMEOUT_MS;
        json_decref(reply);
        reply = NULL;
        free(err);
        err = NULL;
        rc = client_call(s->zctx, s->cfg->control, req, wait, &reply, &err);
        json_decref(req);
        if (rc < 0 || last)
            break;
        upload = json_integer_value(json_object_get(reply, "upload"));
        off += n;
    }
    free(text);
    int code = EXIT_OK;
    if (rc == -EMSGSIZE) {
        cli_error("rma import: %s: too large to send at once (%s); split the file", name, err);
        code = EXIT_BADINPUT;
    } else if (rc == -EREMOTEIO && json_array_size(json_object_get(reply, "errors")) > 0) {
        /* Bad rows: every one by line; the daemon applied nothing. */
        print_import_errors(name, reply);
        code = EXIT_BADINPUT;
    } else if (rc < 0) {
        code = call_failed("rma import", rc, err, reply);
    } else {
        printf("imported: %" JSON_INTEGER_FORMAT " new, %" JSON_INTEGER_FORMAT " updated, %"
               JSON_INTEGER_FORMAT " unchanged\n",
               json_integer_value(json_object_get(reply, "inserted")),
               json_integer_value(json_object_get(reply, "updated")),
               json_integer_value(json_object_get(reply, "unchanged")));
        code = finish_output();
    }
    free(err);
    json_decref(reply);
    return code;
}

/* ---- rma show / list / close --------------------------------------------------------- */

#define TABLE_COLS 8

/* A table printed with columns as wide as their widest cell. Cells are copied. */
struct table {
    int ncols;
    const char *const *head;
    char **cells;            /* rows * ncols */
    size_t rows, cap;
    bool oom;
};

static void table_row(struct table *t, const char *const *cells)
{
    if (t->oom)
        return;
    if (t->rows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(*n));
        if (!n) {
            t->oom = true;
            return;
        }
        t->cells = n;
        t->cap = ncap;
    }
    for (int c = 0; c < t->ncols; c++)
        if (!(t->cells[t->rows * (size_t)t->ncols + c] = strdup(cells[c] ? cells[c] : "-")))
            t->oom = true;
    t->rows++;
}

static void table_print(struct table *t)
{
    size_t width[TABLE_COLS];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t w = text_width(t->cells[r * (size_t)t->ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (int c = 0; c < t->ncols; c++)
        put_cell(t->head[c], width[c], c == t->ncols - 1);
    putchar('\n');
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++)
            put_cell(t->cells[r * (size_t)t->ncols + c], width[c], c == t->ncols - 1);
        putchar('\n');
    }
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

static const char *int_text(const json_t *obj, const char *key, char buf[24])
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, 24, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf;
}

/* "a, b, c" of a JSON array of strings; "-" when empty. malloc'd, NULL when out of memory. */
static char *joined(const json_t *arr)
{
    size_t i, len = 2;
    json_t *v;
    json_array_foreach(arr, i, v)
        len += json_string_length(v) + 2;
    char *out = malloc(len), *p = out;
    if (!out)
        return NULL;
    strcpy(out, "-");
    json_array_foreach(arr, i, v)
        p += sprintf(p, "%s%s", i ? ", " : "", json_string_value(v) ? json_string_value(v) : "");
    return out;
}

static void print_rma(const json_t *rma)
{
    static const char *const lhead[] = { "LINE", "MODEL", "FAMILY", "QUANTITY", "RECEIVED",
                                         "EXPECTED SERIALS", "RECEIVED SERIALS" };
    static const char *const rhead[] = { "RECEIPT", "LINE", "SERIAL", "STATE", "DISPOSITION",
                                         "STATION", "TIME" };
    struct table lt = { 7, lhead, NULL, 0, 0, false }, rt = { 7, rhead, NULL, 0, 0, false };
    char a[24], b[24], c[24];
    size_t i;
    json_t *v;

    put_text(str_or(rma, "number", "-"));
    printf("  ");
    put_text(str_or(rma, "vendor", "-"));
    printf("  issued %s", str_or(rma, "issued", "-"));
    if (json_is_string(json_object_get(rma, "kind")))
        printf("  %s", json_string_value(json_object_get(rma, "kind")));
    printf("\n%s: %s of %s units received\n", str_or(rma, "state", "-"),
           int_text(rma, "received", a), int_text(rma, "authorised", b));
    if (json_is_string(json_object_get(rma, "closed_reason"))) {
        printf("closed %s: ", str_or(rma, "closed_at", "-"));
        put_text(str_or(rma, "closed_reason", "-"));
        putchar('\n');
    }
    putchar('\n');
    json_array_foreach(json_object_get(rma, "lines"), i, v) {
        char *exp = joined(json_object_get(v, "expected_serials"));
        char *got = joined(json_object_get(v, "received_serials"));
        const char *cells[] = { int_text(v, "line", a), str_or(v, "model", "-"),
                                str_or(v, "family", "-"), int_text(v, "quantity", b),
                                int_text(v, "received", c), exp, got };
        table_row(&lt, cells);
        free(exp);
        free(got);
    }
    table_print(&lt);
    putchar('\n');
    if (json_array_size(json_object_get(rma, "receipts")) == 0) {
        printf("no receipts\n");
        return;
    }
    json_array_foreach(json_object_get(rma, "receipts"), i, v) {
        const char *cells[] = { int_text(v, "id", a), int_text(v, "line", b),
                                str_or(v, "serial", "-"), str_or(v, "state", "-"),
                                str_or(v, "disposition", str_or(v, "reason", "-")),
                                str_or(v, "station", "-"),
                                str_or(v, "closed_at", str_or(v, "opened_at", "-")) };
        table_row(&rt, cells);
    }
    table_print(&rt);
}

static void print_rmas(const json_t *list)
{
    static const char *const head[] = { "NUMBER", "VENDOR", "ISSUED", "STATE", "LINES",
                                        "RECEIVED" };
    struct table t = { 6, head, NULL, 0, 0, false };
    size_t i;
    json_t *v;
    char a[24], units[64];

    if (json_array_size(list) == 0) {
        printf("no RMAs\n");
        return;
    }
    json_array_foreach(list, i, v) {
        snprintf(units, sizeof(units), "%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(v, "received")),
                 json_integer_value(json_object_get(v, "authorised")));
        const char *cells[] = { str_or(v, "number", "-"), str_or(v, "vendor", "-"),
                                str_or(v, "issued", "-"), str_or(v, "state", "-"),
                                int_text(v, "lines", a), units };
        table_row(&t, cells);
    }
    table_print(&t);
}

static int rma_query(int argc, char **argv, const char *sub)
{
    static const char show_use[] = "[--config FILE] rma show NUMBER [--json]";
    static const char list_use[] = "[--config FILE] rma list [--state S] [--vendor V] [--json]";
    static const char close_use[] = "[--config FILE] rma close NUMBER --reason TEXT";
    bool show = strcmp(sub, "show") == 0, list = strcmp(sub, "list") == 0;
    const char *use = show ? show_use : list ? list_use : close_use;
    unsigned allowed = show ? OPT_JSON : list ? OPT_JSON | OPT_STATE | OPT_VENDOR | OPT_LIMIT
                                              : OPT_REASON;
    struct opts o;
    struct session s;
    json_t *reply = NULL, *req;
    char what[16];

    snprintf(what, sizeof(what), "rma %s", sub);
    if (parse_opts(argc, argv, allowed, list ? 0 : 1, use, &o) < 0)
        return EXIT_BADINPUT;
    if ((!list && o.nargs != 1) || (!show && !list && (!o.reason || !*o.reason))) {
        cli_error("usage: rmactl %s", use);
        return EXIT_BADINPUT;
    }
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    if (show)
        req = json_pack("{s:s,s:s}", "cmd", "rma.show", "number", o.args[0]);
    else if (!list)
        req = json_pack("{s:s,s:s,s:s}", "cmd", "rma.close", "number", o.args[0], "reason",
                        o.reason);
    else {
        req = control_request_new("rma.list");
        if (req && ((o.state && json_object_set_new(req, "state", json_string(o.state)) < 0)
                    || (o.vendor && json_object_set_new(req, "vendor", json_string(o.vendor)) < 0)
                    || (o.has_limit && json_object_set_new(req, "limit",
                                                           json_integer((json_int_t)o.limit)) < 0))) {
            json_decref(req);
            req = NULL;
        }
    }
    rc = call(&s, what, req, &reply);
    if (rc == 0) {
        if (o.json)
            rc = print_json(reply);
        else if (show)
            print_rma(json_object_get(reply, "rma"));
        else if (list)
            print_rmas(json_object_get(reply, "rmas"));
        else
            printf("closed: %s\n", o.args[0]);
        rc = rc ? rc : finish_output();
    }
    json_decref(reply);
    session_close(&s);
    return rc;
}

int cmd_rma(int argc, char **argv)
{
    static const char usage[] = "[--config FILE] rma import FILE.csv | show NUMBER | "
                                "list [--state S] [--vendor V] | close NUMBER --reason TEXT";
    struct opts o;
    struct session s;
    if (argc >= 2 && (strcmp(argv[1], "show") == 0 || strcmp(argv[1], "list") == 0
                      || strcmp(argv[1], "close") == 0))
        return rma_query(argc - 1, argv + 1, argv[1]);
    if (argc < 2 || strcmp(argv[1], "import") != 0) {
        cli_error("usage: rmactl %s", usage);
        return EXIT_BADINPUT;
    }
    if (parse_opts(argc - 1, argv + 1, 0, 1, usage, &o) < 0)
        return EXIT_BADINPUT;
    if (o.nargs != 1) {
        cli_error("usage: rmactl %s", usage);
        return EXIT_BADINPUT;
    }
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    rc = rma_import(&s, o.args[0]);
    session_close(&s);
    return rc;
}

/* ---- watch ---------------------------------------------------------------------------- */

#define WATCH_POLL_MS 500    /* how often a quiet watch looks at the stop flag */

static volatile sig_atomic_t watch_stop;

static void on_stop_signal(int signo)
{
    (void)signo;
    watch_stop = 1;
}

struct watch {
    struct session *s;
    uint64_t last;        /* highest seq printed (or skipped as before --from) */
    bool have_last;       /* false until the first event when there is no --from */
    uint64_t count;       /* stop after this many lines, 0: never */
    uint64_t printed;
    bool write_error;
};

/*
 * Print one event as "SEQ TOPIC JSON", unless its seq was already printed. Returns 0
 * to go on, 1 when --count is reached or stdout failed.
 */
static int watch_print(const char *topic, const char *body, size_t len, void *data)
{
    struct watch *w = data;
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *seqj = json_object_get(j, "seq");
    if (!json_is_integer(seqj) || json_integer_value(seqj) < 1) {
        cli_error("watch: event without a seq on topic '%.64s' (skipped)", topic);
        json_decref(j);
        return 0;
    }
    uint64_t seq = (uint64_t)json_integer_value(seqj);
    if (w->have_last && seq <= w->last) {
        json_decref(j);
        return 0;                                 /* seen already */
    }
    /* Valid JSON is one line unless it has line breaks between tokens: re-encode then. */
    char *flat = strpbrk(body, "\r\n") ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    printf("%" PRIu64 " ", seq);
    put_text(topic);
    putchar(' ');
    fputs(flat ? flat : body, stdout);
    putchar('\n');
    free(flat);
    if (fflush(stdout) != 0) {
        w->write_error = true;
        return 1;
    }
    w->last = seq;
    w->have_last = true;
    w->printed++;
    return w->count && w->printed >= w->count ? 1 : 0;
}

/* Replay from `from` through watch_print. Returns 0, 1 (stop), or an exit code + 10. */
static int watch_replay(struct watch *w, uint64_t from)
{
    char *err = NULL;
    uint64_t last = 0;
    int rc = client_replay(w->s->zctx, w->s->cfg->replay, from, client_timeout_ms(),
                           watch_print, w, &last, &err);
    if (rc == 1 || rc == -EINTR) {
        free(err);
        return 1;
    }
    if (rc < 0) {
        cli_error("watch: replay from %" PRIu64 ": %s", from, err ? err : strerror(-rc));
        free(err);
        return 10 + EXIT_FAIL;
    }
    /* Nothing stored from `from` on counts as seen, so later live events are not gaps. */
    if (last > w->last || !w->have_last) {
        w->last = last > w->last ? last : w->last;
        w->have_last = true;
    }
    return 0;
}

/*
 * Live events from the SUB socket, subscribed before any replay so nothing falls
 * between the two: events that arrive while a replay runs wait in the socket, and
 * the ones the replay already printed are dropped by seq. A jump in seq is a gap
 * (PUB dropped events): it is filled from the replay endpoint first.
 */
static int watch_live(struct watch *w, void *sub)
{
    while (!watch_stop) {
        char *topic = NULL, *body = NULL;
        size_t len = 0;
        int rc = client_recv_event(sub, WATCH_POLL_MS, &topic, &body, &len);
        if (rc == -ETIMEDOUT || rc == -EINTR || rc == -EBADMSG)
            continue;
        if (rc < 0) {
            cli_error("watch: %s: %s", w->s->cfg->pub, zmq_strerror(-rc));
            return EXIT_FAIL;
        }
        json_t *j = json_loadb(body, len, 0, NULL);
        json_int_t seq = json_integer_value(json_object_get(j, "seq"));
        /* The bus's heartbeat: not an event, but it shows a lost tail (seq up to N). */
        bool beat = strcmp(topic, BUS_HEARTBEAT_TOPIC) == 0;
        json_int_t beat_last = beat ? json_integer_value(json_object_get(j, "last_seq")) : 0;
        json_decref(j);
        int r = 0;
        if (beat) {
            if (w->have_last && beat_last > 0 && (uint64_t)beat_last > w->last)
                r = watch_replay(w, w->last + 1);
        } else {
            if (w->have_last && seq > 0 && (uint64_t)seq > w->last + 1)
                r = watch_replay(w, w->last + 1);
            if (r == 0)
                r = watch_print(topic, body, len, w);
        }
        free(topic);
        free(body);
        if (r >= 10)
            return r - 10;
        if (r == 1)
            break;
    }
    return w->write_error ? EXIT_FAIL : EXIT_OK;
}

/*
 * CURVE for watch: --key NAME.key (this client's secret; its NAME.pub must be in the
 * daemon's curve_allowed_clients) and --server-key SERVER.pub (else the public half of
 * the config's curve_secret_key, when this user can read it). Returns 0 or an exit
 * code (printed).
 */
static int watch_curve(const struct opts *o, const config_t *cfg)
{
    client_curve_t k;
    char *err = NULL;
    int rc = 0;
    if (!o->key && !o->server_key) {
        if (cfg->curve_secret_key) {
            cli_error("watch: the daemon's events need CURVE (curve_secret_key in %s): pass "
                      "--key NAME.key --server-key SERVER.pub", cfg->source);
            return EXIT_BADINPUT;
        }
        return 0;
    }
    if (!o->key) {
        cli_error("watch: --server-key needs --key NAME.key too");
        return EXIT_BADINPUT;
    }
    if ((rc = curve_key_read(o->key, k.secret, &err)) == 0)
        rc = curve_public_of(k.secret, k.public_key);
    if (rc == 0 && o->server_key) {
        rc = curve_key_read(o->server_key, k.server, &err);
    } else if (rc == 0 && cfg->curve_secret_key) {
        uint8_t ss[CURVE_KEY_BYTES];
        if ((rc = curve_key_read(cfg->curve_secret_key, ss, &err)) == 0)
            rc = curve_public_of(ss, k.server);
        explicit_bzero(ss, sizeof(ss));
    } else if (rc == 0) {
        err = strdup("--server-key SERVER.pub is needed (the config names no curve_secret_key)");
        rc = -EINVAL;
    }
    if (rc < 0) {
        cli_error("watch: %s", err ? err : strerror(-rc));
        free(err);
        explicit_bzero(&k, sizeof(k));
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    client_set_curve(&k);
    explicit_bzero(&k, sizeof(k));
    return 0;
}

int cmd_watch(int argc, char **argv)
{
    struct opts o;
    struct session s;
    if (parse_opts(argc, argv, OPT_FROM | OPT_COUNT | OPT_KEYS, 0,
                   "[--config FILE] watch [--from N] [--count N] [--key NAME.key "
                   "--server-key SERVER.pub]", &o) < 0)
        return EXIT_BADINPUT;
    int rc = session_open(&o, &s);
    if (rc)
        return rc;
    if ((rc = watch_curve(&o, s.cfg)) != 0) {
        session_close(&s);
        return rc;
    }

    struct sigaction sa = { .sa_handler = on_stop_signal };   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);

    struct watch w = { .s = &s, .count = o.count };
    char *err = NULL;
    void *sub = client_subscribe(s.zctx, s.cfg->pub, &err);
    if (!sub) {
        cli_error("watch: %s", err ? err : "out of memory");
        free(err);
        session_close(&s);
        return EXIT_FAIL;
    }
    rc = 0;
    if (o.has_from) {
        uint64_t from = o.from ? o.from : 1;
        w.last = from - 1;
        w.have_last = true;
        rc = watch_replay(&w, from);
    }
    if (rc >= 10)
        rc -= 10;
    else if (rc == 1)
        rc = w.write_error ? EXIT_FAIL : EXIT_OK;
    else
        rc = watch_live(&w, sub);
    zmq_close(sub);
    session_close(&s);
    return rc;
}
