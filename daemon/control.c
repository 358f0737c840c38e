/*
 * The control socket (daemon/control.h): one ROUTER, a table of command handlers,
 * and the built-in commands that need only the database.
 *
 * A request is handled to the end inside the readiness callback (parse, argument
 * check, handler, reply), so nothing is kept per client between messages, except for
 * the one rma.import that may run on its thread (its peer's routing id, to answer it).
 * The per-client resources are libzmq's queues, capped by CONTROL_RCVHWM /
 * CONTROL_SNDHWM and CONTROL_FRAME_MAX, and the connections, capped by
 * CONTROL_PEERS_MAX through the socket's monitor.
 */
#include "daemon/control.h"
#include "daemon/control_rma.h"
#include "core/job.h"
#include "core/msgf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "proto/control.h"

#define RECV_PER_CALL 32      /* requests handled per readiness callback */
#define LINGER_MS     100     /* a reply sent just before shutdown still leaves */
#define CONTROL_DEFERRED 1    /* a handler's "answered later, by send_reply" (this file only) */

struct handler {
    char cmd[CONTROL_CMD_MAX + 1];
    const char *const *keys;  /* the arguments it takes; NULL: none */
    control_fn fn;
    void *data;
};

/* An rma.import running on its own thread, and who gets the answer. */
struct import {
    control_t *ctl;
    router_peer_t peer;
    char *db_path, *pattern;      /* the thread's own connection and regex are made from these */
    /* The file as sent, spooled to disk (an import is megabytes; issue 17). The
     * thread reads it twice (checked, then applied) and never holds it whole. */
    FILE *spool;
    int rc;
    db_import_report_t rep;
    char *err;
    job_t *job;
};

struct control {
    loop_t *loop;
    db_t *db;
    txn_t *txn;             /* the daemon's unit of work: writes go through it */
    void *zsock;
    char *endpoint;
    regex_t rma_re;
    char *rma_pattern;
    control_rma_t *rma_cmds;
    void *monitor;              /* PAIR: the ROUTER's accepted/disconnected events */
    size_t peers;               /* connected now, by those events */
    const router_peer_t *asking; /* while a handler runs: the peer of its request */
    struct import *import;      /* the rma.import running, or NULL */
    struct upload *upload;      /* an rma.import being sent in parts, or NULL */
    uint64_t uploads;           /* ids given so far */
    struct handler handlers[CONTROL_HANDLERS_MAX];
    size_t nhandlers;
    control_stats_t stats;
};

/*
 * A handler's failure: *reply = {"error": msg, ...fields} (msg is consumed; fields
 * may be NULL and is consumed). Returns err.
 */
static int refuse(json_t **reply, int err, char *msg, json_t *fields)
{
    json_t *obj = fields ? fields : json_object();
    if (obj && msg)
        (void)json_object_set_new(obj, "error", json_string(msg));
    free(msg);
    *reply = obj;
    return err;
}

/* ---- built-in commands ------------------------------------------------------------- */

static int add_receipt(const db_receipt_t *r, void *data)
{
    json_t *j = control_receipt_json(r);
    return j && json_array_append_new(data, j) == 0 ? 0 : -ENOMEM;
}

/* {"cmd": "receipts", "limit": N, "policy_version": V} -> {"receipts": [newest first]} */
static int cmd_receipts(const json_t *req, json_t **reply, void *data)
{
    control_t *ctl = data;
    json_int_t limit = CONTROL_RECEIPTS_DEFAULT;

    json_t *l = json_object_get(req, "limit");
    if (l) {
        if (!json_is_integer(l) || json_integer_value(l) < 1 ||
            json_integer_value(l) > CONTROL_RECEIPTS_MAX)
            return refuse(reply, -EINVAL, msgf("limit: expected an integer from 1 to %d",
                                               CONTROL_RECEIPTS_MAX), NULL);
        limit = json_integer_value(l);
    }
    json_t *pv = json_object_get(req, "policy_version");
    if (pv && (!json_is_string(pv) || !*json_string_value(pv)))
        return refuse(reply, -EINVAL, msgf("policy_version: expected a version string"), NULL);
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    int rc = pv ? db_receipt_list_by_policy_version(ctl->db, json_string_value(pv),
                                                    (unsigned)limit, add_receipt, list)
                : db_receipt_list_recent(ctl->db, (unsigned)limit, add_receipt, list);
    if (rc < 0) {
        json_decref(list);
        return refuse(reply, rc, rc == -ENOMEM ? NULL : msgf("%s", db_errmsg(ctl->db)), NULL);
    }
    *reply = json_pack("{s:o}", "receipts", list);
    return *reply ? 0 : -ENOMEM;
}

/* "line 7: issued: ..." -> {"line": 7, "message": "issued: ..."} */
static json_t *import_error_json(const char *s)
{
    unsigned long line = 0;
    const char *msg = s;
    if (strncmp(s, "line ", 5) == 0) {
        char *end;
        line = strtoul(s + 5, &end, 10);
        if (strncmp(end, ": ", 2) == 0)
            msg = end + 2;
        else
            line = 0;
    }
    return json_pack("{s:I,s:s}", "line", (json_int_t)line, "message", msg);
}

/* The reply to a finished import (NULL when out of memory); see cmd_rma_import. */
static json_t *import_reply(struct import *im)
{
    if (im->rc == 0)
        return control_reply_ok(json_pack("{s:I,s:I,s:I,s:I}", "rows", (json_int_t)im->rep.rows,
                                          "inserted", (json_int_t)im->rep.inserted, "updated",
                                          (json_int_t)im->rep.updated, "unchanged",
                                          (json_int_t)im->rep.unchanged));
    json_t *list = json_array();
    for (size_t i = 0; list && i < im->rep.nerrors; i++) {
        if (json_array_append_new(list, import_error_json(im->rep.errors[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *fields = list ? json_pack("{s:o,s:I}", "errors", list, "errors_total",
                                      (json_int_t)im->rep.errors_total)
                          : NULL;
    if (!fields)
        return NULL;
    return control_reply_error(control_code_for_errno(im->rc),
                               im->err ? im->err : strerror(-im->rc), fields);
}

/*
 * The import thread: its own connection (the loop's is never used off the loop) with
 * the library's long busy timeout, so it waits out the loop's short transactions. The
 * CSV is checked in full first, then applied in one transaction: all or nothing.
 */
static void import_work(void *arg)
{
    struct import *im = arg;
    db_t *db = NULL;
    regex_t re;
    im->rc = db_open(im->db_path, &db, &im->err);
    if (im->rc < 0)
        return;
    if (regcomp(&re, im->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        im->rc = -EINVAL;
        im->err = msgf("rma_pattern does not compile");
    } else {
        im->rc = db_rma_import_file(db, im->spool, &re, &im->rep, &im->err);
        regfree(&re);
    }
    db_close(&db);
}

static void import_free(struct import *im)
{
    db_import_report_clear(&im->rep);
    free(im->err);
    if (im->spool)
        fclose(im->spool);
    free(im->db_path);
    free(im->pattern);
    free(im);
}

static void send_reply(control_t *ctl, const router_peer_t *to, json_t *reply);

/* On the loop: the import is done; answer whoever asked (if still there). */
static void import_done(void *arg)
{
    struct import *im = arg;
    control_t *ctl = im->ctl;
    ctl->import = NULL;
    send_reply(ctl, &im->peer, import_reply(im));
    import_free(im);
}

/*
 * An rma.import sent in parts ({"more": true} on all but the last): what came so far,
 * in an unlinked file beside the database, so the daemon never holds a file whole
 * (issue 17). One at a time; a sender silent for CONTROL_UPLOAD_IDLE_MS loses its
 * upload to the next one that starts.
 */
struct upload {
    uint64_t id;
    FILE *spool;
    size_t bytes;
    int64_t last_ms;
};

/* An unlinked file for an import: beside the database (its disk, its permissions),
 * or in TMPDIR where the directory cannot hold one (no O_TMPFILE). NULL with errno. */
static FILE *spool_open(const char *db_path)
{
    char *copy = strdup(db_path);
    int fd = -1;

    if (!copy)
        return NULL;
    fd = open(dirname(copy), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    free(copy);
    if (fd < 0)
        return tmpfile();
    FILE *f = fdopen(fd, "w+");
    if (!f)
        close(fd);
    return f;
}

static void upload_drop(control_t *ctl)
{
    if (!ctl->upload)
        return;
    if (ctl->upload->spool)
        fclose(ctl->upload->spool);
    free(ctl->upload);
    ctl->upload = NULL;
}

/* Append one part of the file to the upload; 0, or a refusal in *reply. */
static int upload_append(control_t *ctl, struct upload *u, const json_t *csv, json_t **reply)
{
    size_t len = json_string_length(csv);

    if (u->bytes + len > DB_IMPORT_MAX_BYTES) {
        upload_drop(ctl);
        return refuse(reply, -E2BIG, msgf("file larger than %u bytes", DB_IMPORT_MAX_BYTES),
                      NULL);
    }
    if (len && fwrite(json_string_value(csv), 1, len, u->spool) != len) {
        int rc = -errno;
        upload_drop(ctl);
        return refuse(reply, rc, msgf("import: cannot spool the file: %s", strerror(-rc)), NULL);
    }
    u->bytes += len;
    u->last_ms = loop_now_ms();
    return 0;
}

/*
 * {"cmd": "rma.import", "csv": "..."} -> {"rows", "inserted", "updated", "unchanged"};
 * a file with errors changes nothing and gets {"error": first, "errors": [{"line",
 * "message"}...], "errors_total": N}. A big file comes in parts: {"csv": part,
 * "more": true} -> {"upload": ID, "received": bytes}, then {"csv": part, "upload": ID,
 * "more": true} ..., and the last part without "more" imports it all. A file of
 * DB_IMPORT_MAX_ROWS rows takes seconds: it runs on a thread (import_work) and the
 * answer is sent when it is done (CONTROL_DEFERRED); one import at a time, a second
 * is told to retry.
 */
static int cmd_rma_import(const json_t *req, json_t **reply, void *data)
{
    control_t *ctl = data;
    json_t *csv = json_object_get(req, "csv");
    json_t *more = json_object_get(req, "more"), *up = json_object_get(req, "upload");
    if (!json_is_string(csv))
        return refuse(reply, -EINVAL, msgf("csv: expected the file's text as a string"), NULL);
    if (more && !json_is_boolean(more))
        return refuse(reply, -EINVAL, msgf("more: expected true or false"), NULL);
    if (up && !json_is_integer(up))
        return refuse(reply, -EINVAL, msgf("upload: expected the id of an upload"), NULL);
    if (ctl->import)
        return refuse(reply, -EBUSY, msgf("another import is running, retry when it is done"),
                      NULL);
    const char *path = db_path(ctl->db);
    if (!ctl->asking || !path)
        return -ENOMEM;
    if (ctl->upload && loop_now_ms() - ctl->upload->last_ms > CONTROL_UPLOAD_IDLE_MS)
        upload_drop(ctl);   /* its sender is gone */
    if (up && (!ctl->upload || (json_int_t)ctl->upload->id != json_integer_value(up)))
        return refuse(reply, -ENOENT, msgf("upload %" JSON_INTEGER_FORMAT ": unknown or "
                                           "expired; send the file again",
                                           json_integer_value(up)), NULL);
    if (!up && ctl->upload)
        return refuse(reply, -EBUSY, msgf("another import is being sent, retry when it is "
                                          "done"), NULL);
    if (!up) {
        if (!(ctl->upload = calloc(1, sizeof(*ctl->upload))))
            return -ENOMEM;
        ctl->upload->id = ++ctl->uploads;
        if (!(ctl->upload->spool = spool_open(path))) {
            int rc = -errno;
            upload_drop(ctl);
            return refuse(reply, rc, msgf("import: cannot make a spool file: %s",
                                          strerror(-rc)), NULL);
        }
    }
    struct upload *u = ctl->upload;
    int rc = upload_append(ctl, u, csv, reply);
    if (rc < 0)
        return rc;
    if (json_is_true(more)) {
        *reply = control_reply_ok(json_pack("{s:I,s:I}", "upload", (json_int_t)u->id,
                                            "received", (json_int_t)u->bytes));
        return *reply ? 0 : -ENOMEM;
    }

    /* The last part: import the whole file from its spool. */
    struct import *im = calloc(1, sizeof(*im));
    if (!im || fflush(u->spool) != 0) {
        free(im);
        upload_drop(ctl);
        return -ENOMEM;
    }
    *im = (struct import){ .ctl = ctl, .peer = *ctl->asking, .spool = u->spool };
    u->spool = NULL;
    upload_drop(ctl);
    if (!(im->db_path = strdup(path)) || !(im->pattern = strdup(ctl->rma_pattern))) {
        import_free(im);
        return -ENOMEM;
    }
    if (!(im->job = job_start(ctl->loop, import_work, import_done, im))) {
        rc = -errno;
        import_free(im);
        return refuse(reply, rc, msgf("import: cannot start its thread: %s", strerror(-rc)),
                      NULL);
    }
    ctl->import = im;
    return CONTROL_DEFERRED;
}

/* The text form db_rma_set_field takes, from a JSON scalar; NULL for other types. */
static char *field_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        return msgf("%lld", (long long)json_integer_value(v));
    case JSON_REAL:
        return msgf("%.15g", json_real_value(v));
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        return strdup("");
    default:
        return NULL;
    }
}

static const char *upsert_name(db_upsert_t what)
{
    return what == DB_UPSERT_INSERTED ? "inserted"
         : what == DB_UPSERT_UPDATED  ? "updated" : "unchanged";
}

/* Append a malloc'd message to the errors array (consumed). Returns 0 or -ENOMEM. */
static int add_msg(json_t *errors, char *line)
{
    int rc = line && json_array_append_new(errors, json_string(line)) == 0 ? 0 : -ENOMEM;
    free(line);
    return rc;
}

/* The RMA's own fields; everything else of a row belongs to a line. */
static bool rma_level_field(const char *key)
{
    static const char *const rma_keys[] = { "number", "issued", "kind", "vendor", "order_value",
                                            "proof_of_purchase", NULL };
    for (size_t i = 0; rma_keys[i]; i++)
        if (strcmp(key, rma_keys[i]) == 0)
            return true;
    return false;
}

/* A JSON array of serials as the '|'-list db_rma_set_field takes; NULL if not strings. */
static char *serials_text(const json_t *arr)
{
    size_t i, len = 0;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v) || strchr(json_string_value(v), '|'))
            return NULL;
        len += json_string_length(v) + 1;
    }
    char *out = malloc(len + 1), *p = out;
    if (!out)
        return NULL;
    *out = '\0';
    json_array_foreach(arr, i, v) {
        p += sprintf(p, "%s%s", i ? "|" : "", json_string_value(v));
    }
    return out;
}

/*
 * Set the fields of obj on rma (skipping "lines"); `where` prefixes messages ("rma",
 * "rma.lines[2]"); `line_only`: the RMA's own fields are errors here. Problems go
 * to errors. Returns 0 or -ENOMEM.
 */
static int set_fields(db_rma_t *rma, const json_t *obj, const char *where, bool line_only,
                      bool no_line_fields, json_t *errors)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "lines") == 0 && !line_only)
            continue;
        if (line_only && rma_level_field(key)) {
            if (add_msg(errors, msgf("%s.%s: a field of the RMA, not of a line", where, key)) < 0)
                return -ENOMEM;
            continue;
        }
        if (no_line_fields && !rma_level_field(key) && db_rma_field_known(key)) {
            if (add_msg(errors, msgf("rma.%s: with \"lines\", give it on each line", key)) < 0)
                return -ENOMEM;
            continue;
        }
        bool list = strcmp(key, "expected_serials") == 0 && json_is_array(v);
        char *text = list ? serials_text(v) : field_text(v), *msg = NULL;
        int rc = text ? db_rma_set_field(rma, key, text, &msg) : -EINVAL;
        free(text);
        if (rc == 0)
            continue;
        char *line;
        if (!text && list)
            line = msgf("%s.expected_serials: expected serials as strings without '|'", where);
        else if (!text)
            line = msgf("%s.%.40s: expected a string, number, boolean or null", where, key);
        else if (rc == -ENOENT)
            line = msgf("%s: unknown field \"%.40s\"", where, key);
        else
            line = msgf("%s.%s", where, msg ? msg : "out of memory");
        free(msg);
        if (add_msg(errors, line) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* One expected serial of a put, for serials listed on two lines. */
struct listed {
    char key[DB_RMA_TEXT_MAX + 1];
    size_t line;                 /* index in "lines" */
};

static int listed_cmp(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * Problems across the lines: distinct line numbers, a serial listed once in the RMA.
 * Sorted, not compared pairwise: a put may hold 1000 lines of hundreds of serials.
 */
static int check_lines(db_rma_t *lines, size_t n, json_t *errors)
{
    struct listed *all = NULL;
    size_t nall = 0, cap = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if (lines[i].line == 0)
            lines[i].line = (int)i + 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        for (size_t k = 0; k < i && rc == 0; k++)
            if (lines[k].line == lines[i].line)
                rc = add_msg(errors, msgf("rma.lines[%zu].line: %d is also lines[%zu]", i,
                                          lines[i].line, k));
        const char *list = lines[i].expected_serials[0] ? lines[i].expected_serials
                                                        : lines[i].expected_serial;
        for (const char *p = list; *p && rc == 0; ) {
            size_t len = strcspn(p, "|");
            if (nall == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct listed *na = realloc(all, ncap * sizeof(*na));
                if (!na) {
                    rc = -ENOMEM;
                    break;
                }
                all = na;
                cap = ncap;
            }
            db_serial_key(p, len, all[nall].key, sizeof(all[nall].key));
            all[nall].line = i;
            nall += all[nall].key[0] != '\0';
            p += len + (p[len] == '|');
        }
    }
    if (rc == 0 && nall > 1)
        qsort(all, nall, sizeof(*all), listed_cmp);
    for (size_t i = 1; rc == 0 && i < nall; i++)
        if (strcmp(all[i].key, all[i - 1].key) == 0 && all[i].line != all[i - 1].line)
            rc = add_msg(errors, msgf("rma.lines[%zu].expected_serials: serial \"%s\" is already "
                                      "listed on lines[%zu]", all[i].line, all[i].key,
                                      all[i - 1].line));
    free(all);
    return rc;
}

/*
 * {"cmd": "rma.put", "rma": {"number": "RMA-1001", "issued": "2026-11-02", ...}}:
 * the fields of one CSV row, as strings (numbers and booleans are accepted too),
 * checked like an imported row; or the RMA's fields and "lines": [{line fields},
 * ...], every line checked like a row of the RMA. The RMA is then exactly what was
 * put (lines not given go, unless units came in on them) -> {"number", "result"}.
 */
static int cmd_rma_put(const json_t *req, json_t **reply, void *data)
{
    control_t *ctl = data;
    char *err = NULL;
    db_rma_t *lines = NULL;
    size_t n = 1;
    int rc;

    json_t *obj = json_object_get(req, "rma");
    if (!json_is_object(obj))
        return refuse(reply, -EINVAL, msgf("rma: expected an object of RMA fields"), NULL);
    json_t *jlines = json_object_get(obj, "lines");
    if (jlines) {
        if (!json_is_array(jlines) || json_array_size(jlines) < 1 ||
            json_array_size(jlines) > CONTROL_RMA_LINES_MAX)
            return refuse(reply, -EINVAL, msgf("rma.lines: expected an array of 1 to %d line "
                                               "objects", CONTROL_RMA_LINES_MAX), NULL);
        n = json_array_size(jlines);
    }

    json_t *errors = json_array();
    if (!errors || !(lines = calloc(n, sizeof(*lines)))) {
        json_decref(errors);
        return -ENOMEM;
    }
    db_rma_init(&lines[0]);
    rc = set_fields(&lines[0], obj, "rma", false, jlines != NULL, errors);
    /* Every line starts from the RMA's own fields, before any line's are set. */
    for (size_t i = 1; i < n; i++)
        lines[i] = lines[0];
    for (size_t i = 0; rc == 0 && jlines && i < n; i++) {
        json_t *jl = json_array_get(jlines, i);
        char where[48];
        snprintf(where, sizeof(where), "rma.lines[%zu]", i);
        if (!json_is_object(jl))
            rc = add_msg(errors, msgf("%s: expected an object of line fields", where));
        else
            rc = set_fields(&lines[i], jl, where, true, false, errors);
    }
    for (size_t i = 0; rc == 0 && json_array_size(errors) == 0 && i < n; i++) {
        if (db_rma_validate(&lines[i], &ctl->rma_re, &err) < 0) {
            rc = jlines ? add_msg(errors, msgf("rma.lines[%zu].%s", i, err ? err : "invalid"))
                        : add_msg(errors, msgf("rma.%s", err ? err : "invalid"));
            free(err);
            err = NULL;
        }
    }
    if (rc == 0 && json_array_size(errors) == 0)
        rc = check_lines(lines, n, errors);
    if (rc < 0) {
        free(lines);
        json_decref(errors);
        return rc;
    }
    size_t nerr = json_array_size(errors);
    if (nerr > 0) {
        const char *first = json_string_value(json_array_get(errors, 0));
        char *msg = nerr > 1 ? msgf("%s (and %zu more error%s)", first, nerr - 1,
                                    nerr > 2 ? "s" : "")
                             : msgf("%s", first);
        free(lines);
        return refuse(reply, -EINVAL, msg, json_pack("{s:o}", "errors", errors));
    }
    json_decref(errors);

    if (db_in_transaction(ctl->db)) {
        free(lines);
        return refuse(reply, -EBUSY, msgf("database busy, retry"), NULL);
    }
    db_upsert_t what = DB_UPSERT_UNCHANGED;
    rc = txn_begin(ctl->txn);
    if (rc == 0 && (rc = db_rma_replace(ctl->db, lines, n, &what)) < 0)
        txn_rollback(ctl->txn, rc);
    else if (rc == 0)
        rc = txn_commit(ctl->txn);
    if (rc < 0) {
        char *msg = msgf("%s", db_errmsg(ctl->db));
        free(lines);
        return refuse(reply, rc, msg, NULL);
    }
    *reply = json_pack("{s:s,s:s}", "number", lines[0].number, "result", upsert_name(what));
    free(lines);
    return *reply ? 0 : -ENOMEM;
}

/* ---- requests ---------------------------------------------------------------------- */

static const struct handler *handler_find(const control_t *ctl, const char *cmd)
{
    for (size_t i = 0; i < ctl->nhandlers; i++)
        if (strcmp(ctl->handlers[i].cmd, cmd) == 0)
            return &ctl->handlers[i];
    return NULL;
}

/* `unknown command "x" (known: a, b, c)` */
static json_t *unknown_command(const control_t *ctl, const char *cmd)
{
    size_t len = 0;
    char known[CONTROL_HANDLERS_MAX * (CONTROL_CMD_MAX + 2) + 1] = "";
    for (size_t i = 0; i < ctl->nhandlers; i++)
        len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s", i ? ", " : "",
                                ctl->handlers[i].cmd);
    char *msg = msgf("unknown command \"%s\" (known: %s)", cmd, known);
    json_t *r = control_reply_error(CONTROL_BAD_REQUEST, msg ? msg : "unknown command", NULL);
    free(msg);
    return r;
}

/* The reply to req, or NULL with *deferred set when the handler answers later. */
static json_t *run_handler(const struct handler *h, const json_t *req, bool *deferred)
{
    json_t *fields = NULL;
    char *err = NULL;
    /* docs/control.md: an argument a command does not take is an error, never ignored
     * (a typo such as "reciept" must not silently do something else). */
    if (control_check_keys(req, h->keys, &err) < 0) {
        json_t *r = control_reply_error(control_code_for_errno(-EINVAL), err ? err : "unknown field",
                                        NULL);
        free(err);
        return r;
    }
    int rc = h->fn(req, &fields, h->data);
    if (rc == CONTROL_DEFERRED) {
        *deferred = true;
        return NULL;
    }
    if (rc >= 0)
        return control_reply_ok(fields);
    const char *e = json_string_value(json_object_get(fields, "error"));
    char *msg = strdup(e ? e : strerror(-rc));
    json_t *r = control_reply_error(control_code_for_errno(rc), msg ? msg : "out of memory",
                                    fields);
    free(msg);
    return r;
}

/* The reply to one received message (NULL when out of memory or *deferred). */
static json_t *answer(control_t *ctl, router_msg_t *m, bool *deferred)
{
    if (m->nframes != 1) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected one frame (a JSON object), got %zu", m->nframes);
        return control_reply_error(CONTROL_BAD_REQUEST, msg, NULL);
    }
    json_t *req = NULL;
    const char *cmd = NULL;
    char *err = NULL;
    if (control_request_parse(router_msg_data(m), router_msg_size(m), &req, &cmd, &err) < 0) {
        json_t *r = control_reply_error(CONTROL_BAD_REQUEST, err ? err : "out of memory", NULL);
        free(err);
        return r;
    }
    const struct handler *h = handler_find(ctl, cmd);
    ctl->asking = &m->peer;
    json_t *r = h ? run_handler(h, req, deferred) : unknown_command(ctl, cmd);
    ctl->asking = NULL;
    json_decref(req);
    return r;
}

/* Send reply (consumed; NULL: out of memory) to `to`, counting what went wrong. */
static void send_reply(control_t *ctl, const router_peer_t *to, json_t *reply)
{
    static const char nomem[] = "{\"ok\":false,\"error\":\"out of memory\",\"code\":\"failed\"}";

    if (!reply || !json_is_true(json_object_get(reply, "ok")))
        ctl->stats.errors++;
    size_t len = 0;
    char *text = reply ? control_encode(reply, &len) : NULL;
    json_decref(reply);
    const void *frame = text ? text : nomem;
    if (!text)
        len = sizeof(nomem) - 1;
    /* -EHOSTUNREACH: the peer left; -EAGAIN: it stopped reading. Either way, drop. */
    if (router_send(ctl->zsock, to, &frame, &len, 1) < 0)
        ctl->stats.unsent++;
    free(text);
}

static void handle(control_t *ctl, router_msg_t *m)
{
    bool deferred = false;
    ctl->stats.requests++;
    json_t *reply = answer(ctl, m, &deferred);
    if (!deferred)
        send_reply(ctl, &m->peer, reply);
}

static void control_readable(loop_t *loop, void *zsock, unsigned events, void *data)
{
    control_t *ctl = data;

    (void)loop;
    (void)events;
    for (int i = 0; i < RECV_PER_CALL; i++) {
        router_msg_t m;
        int rc = router_msg_recv(zsock, &m);
        if (rc == -EPROTO)
            continue;
        if (rc < 0)
            break;
        handle(ctl, &m);
        router_msg_close(&m);
    }
}

/* ---- peers ------------------------------------------------------------------------- */

/*
 * Whether fd is one of our control connections: a unix socket whose local address is
 * the control socket's path. The fd comes from a monitor event, read a moment after
 * libzmq's I/O thread accepted it: if that connection is already gone, the number may
 * have been reused, and only a connection to this same socket may then be closed.
 */
static bool is_control_conn(const control_t *ctl, int fd)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    const char *path = ctl->endpoint + 6;    /* "ipc://" */
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path))
        return false;
    size_t n = len - offsetof(struct sockaddr_un, sun_path);
    if (path[0] == '@')      /* abstract: a NUL first instead of '@' */
        return n >= 1 && sa.sun_path[0] == '\0' && n - 1 >= strlen(path + 1) &&
               memcmp(sa.sun_path + 1, path + 1, strlen(path + 1)) == 0;
    return strncmp(sa.sun_path, path, n) == 0 && strlen(path) <= n;
}

/*
 * The ROUTER's monitor: count connections; one beyond CONTROL_PEERS_MAX is shut down
 * at once (libzmq then drops it and reports it disconnected), so local clients cannot
 * make rmad hold more than the total of daemon/control.h.
 */
static void monitor_readable(loop_t *loop, void *zsock, unsigned events, void *data)
{
    control_t *ctl = data;
    (void)loop;
    (void)events;
    for (int i = 0; i < RECV_PER_CALL; i++) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, zsock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t what = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&what, zmq_msg_data(&ev), 2);
            memcpy(&value, (const char *)zmq_msg_data(&ev) + 2, 4);
        }
        /* The second frame (the endpoint) is not needed. */
        while (zmq_msg_more(&ev)) {
            zmq_msg_close(&ev);
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, zsock, ZMQ_DONTWAIT) < 0)
                break;
        }
        zmq_msg_close(&ev);
        if (what == ZMQ_EVENT_ACCEPTED) {
            if (++ctl->peers > CONTROL_PEERS_MAX && is_control_conn(ctl, (int)value)) {
                (void)shutdown((int)value, SHUT_RDWR);
                ctl->stats.peers_refused++;
            }
        } else if (what == ZMQ_EVENT_DISCONNECTED && ctl->peers > 0) {
            ctl->peers--;
        }
    }
}

static int monitor_start(control_t *ctl, void *zctx)
{
    char ep[64];
    (void)snprintf(ep, sizeof(ep), "inproc://rmad-control-monitor-%" PRIxPTR, (uintptr_t)ctl);
    if (zmq_socket_monitor(ctl->zsock, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0)
        return -errno;
    if (!(ctl->monitor = zmq_socket(zctx, ZMQ_PAIR)))
        return -errno;
    if (zmq_connect(ctl->monitor, ep) < 0)
        return -errno;
    return loop_add_zsock(ctl->loop, ctl->monitor, LOOP_IN, monitor_readable, ctl);
}

static void monitor_stop(control_t *ctl)
{
    if (!ctl->monitor)
        return;
    (void)loop_del_zsock(ctl->loop, ctl->monitor);
    (void)zmq_socket_monitor(ctl->zsock, NULL, 0);
    zmq_close(ctl->monitor);
    ctl->monitor = NULL;
}

/* ---- setting up -------------------------------------------------------------------- */

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? 0 : -errno;
}

/*
 * Before binding PATH: its directory must exist (a missing /run/rmad is a packaging
 * error to report, not to paper over), and a socket file there must not belong to a
 * live process (libzmq would silently unlink it and take over). Returns 0 or -errno
 * with *errmsg set.
 */
static int check_ipc_path(const char *ep, const char *path, char **errmsg)
{
    struct stat st;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st) < 0)
        rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc < 0) {
        *errmsg = msgf("control %s: directory %s: %s", ep, dir, strerror(-rc));
        free(copy);
        return rc;
    }
    free(copy);

    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        *errmsg = msgf("control %s: path too long", ep);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;          /* bind will tell */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        rc = -EADDRINUSE;
    (void)close(fd);
    if (rc < 0)
        *errmsg = msgf("control %s: socket in use by a running process (another rmad?)", ep);
    return rc;
}

/*
 * libzmq creates the ipc socket file inside zmq_bind, on this thread, so the umask
 * set around the call gives it mode 0660. The umask is process-wide: rmad binds
 * before it starts any thread that creates files.
 */
static void *bind_control(void *zctx, const char *ep, char **errmsg)
{
    const char *path = strncmp(ep, "ipc://", 6) == 0 ? ep + 6 : NULL;
    if (!path || !*path) {
        *errmsg = msgf("control %s: expected ipc://PATH", ep);
        return NULL;
    }
    if (path[0] != '@' && check_ipc_path(ep, path, errmsg) < 0)
        return NULL;

    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    int rc = s ? 0 : -errno;
    int64_t max = (int64_t)CONTROL_FRAME_MAX;
    if (rc == 0) rc = set_int(s, ZMQ_ROUTER_MANDATORY, 1);
    if (rc == 0) rc = set_int(s, ZMQ_RCVHWM, CONTROL_RCVHWM);
    if (rc == 0) rc = set_int(s, ZMQ_SNDHWM, CONTROL_SNDHWM);
    if (rc == 0) rc = set_int(s, ZMQ_LINGER, LINGER_MS);
    if (rc == 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0)
        rc = -errno;
    if (rc == 0) {
        mode_t old = umask(0117);
        if (zmq_bind(s, ep) < 0)
            rc = -errno;
        (void)umask(old);
    }
    if (rc < 0) {
        *errmsg = msgf("control %s: %s", ep, zmq_strerror(-rc));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

control_t *control_new(void *zctx, loop_t *loop, txn_t *txn, const char *endpoint,
                       const char *rma_pattern, char **errmsg)
{
    *errmsg = NULL;
    if (!zctx || !loop || !txn || !endpoint) {
        *errmsg = msgf("control: missing argument");
        return NULL;
    }
    control_t *ctl = calloc(1, sizeof(*ctl));
    if (!ctl || !(ctl->endpoint = strdup(endpoint)))
        goto nomem;
    ctl->loop = loop;
    ctl->txn = txn;
    ctl->db = txn_db(txn);
    const char *pattern = rma_pattern ? rma_pattern : DB_RMA_NUMBER_PATTERN;
    if (!(ctl->rma_pattern = strdup(pattern)))
        goto free_ctl;
    if (regcomp(&ctl->rma_re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        *errmsg = msgf("control: rma_pattern does not compile");
        goto free_ctl;
    }
    static const char *const receipts_keys[] = { "limit", "policy_version", NULL };
    static const char *const import_keys[] = { "csv", "more", "upload", NULL };
    static const char *const put_keys[] = { "rma", NULL };
    if (control_register(ctl, "receipts", receipts_keys, cmd_receipts, ctl) < 0 ||
        control_register(ctl, "rma.import", import_keys, cmd_rma_import, ctl) < 0 ||
        control_register(ctl, "rma.put", put_keys, cmd_rma_put, ctl) < 0 ||
        !(ctl->rma_cmds = control_rma_new(ctl, txn)))
        goto free_re;
    ctl->zsock = bind_control(zctx, endpoint, errmsg);
    if (!ctl->zsock)
        goto free_re;
    int rc = monitor_start(ctl, zctx);
    if (rc == 0)
        rc = loop_add_zsock(loop, ctl->zsock, LOOP_IN, control_readable, ctl);
    if (rc < 0) {
        *errmsg = msgf("control %s: %s", endpoint, strerror(-rc));
        goto close_sock;
    }
    return ctl;

close_sock:
    monitor_stop(ctl);
    zmq_close(ctl->zsock);
free_re:
    control_rma_destroy(&ctl->rma_cmds);
    regfree(&ctl->rma_re);
free_ctl:
    free(ctl->rma_pattern);
    free(ctl->endpoint);
    free(ctl);
    if (!*errmsg)
        *errmsg = msgf("control: out of memory");
    return NULL;
nomem:
    free(ctl);
    *errmsg = msgf("control: out of memory");
    return NULL;
}

void control_destroy(control_t **ctl_p)
{
    if (!ctl_p || !*ctl_p)
        return;
    control_t *ctl = *ctl_p;
    /* An import still running is waited for and answered: it loses nothing. */
    if (ctl->import)
        job_finish(&ctl->import->job);
    upload_drop(ctl);
    monitor_stop(ctl);
    (void)loop_del_zsock(ctl->loop, ctl->zsock);
    zmq_close(ctl->zsock);
    control_rma_destroy(&ctl->rma_cmds);
    regfree(&ctl->rma_re);
    free(ctl->rma_pattern);
    free(ctl->endpoint);
    free(ctl);
    *ctl_p = NULL;
}

int control_register(control_t *ctl, const char *cmd, const char *const *keys, control_fn fn,
                     void *data)
{
    if (!ctl || !cmd || !fn)
        return -EINVAL;
    size_t len = strlen(cmd);
    if (!control_cmd_valid(cmd, len))
        return -EINVAL;
    if (handler_find(ctl, cmd))
        return -EEXIST;
    if (ctl->nhandlers == CONTROL_HANDLERS_MAX)
        return -ENOSPC;
    struct handler *h = &ctl->handlers[ctl->nhandlers++];
    memcpy(h->cmd, cmd, len + 1);
    h->keys = keys;
    h->fn = fn;
    h->data = data;
    return 0;
}

void control_set_rma_expiry(control_t *ctl, control_rma_expiry_fn fn, void *data)
{
    if (ctl)
        control_rma_set_expiry(ctl->rma_cmds, fn, data);
}

const char *control_endpoint(const control_t *ctl)
{
    return ctl ? ctl->endpoint : NULL;
}

control_stats_t control_stats(const control_t *ctl)
{
    control_stats_t none = { 0 };
    return ctl ? ctl->stats : none;
}
