/*
 * The control commands about RMAs as a whole (daemon/control_rma.h): rma.show,
 * rma.list, rma.close. Every answer is read from the database, the one source of
 * truth for what came in on which line.
 */
#include "daemon/control_rma.h"
#include "core/msgf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/control.h"

struct control_rma {
    txn_t *txn;
    db_t *db;
    control_rma_expiry_fn expired;
    void *expired_data;
};

static int refuse(json_t **reply, int err, char *msg)
{
    json_t *obj = json_object();
    if (obj && msg)
        (void)json_object_set_new(obj, "error", json_string(msg));
    free(msg);
    *reply = obj;
    return err;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *date_or_null(caldate_t d)
{
    char buf[CALDATE_STRLEN];
    if (d == CALDATE_NONE)
        return json_null();
    caldate_format(d, buf);
    return json_string(buf);
}

/* The RMA's state as shown: the database's, or expired when the vendor's policy says. */
static db_rma_status_t shown_state(const control_rma_t *cr, const db_rma_t *r)
{
    if ((r->status == DB_RMA_OPEN || r->status == DB_RMA_PARTIAL) && cr->expired
        && cr->expired(r, cr->expired_data) > 0)
        return DB_RMA_EXPIRED;
    return r->status;
}

static json_t *rma_summary(const control_rma_t *cr, const db_rma_t *r)
{
    return json_pack("{s:s,s:o,s:o,s:s,s:s,s:i,s:i,s:i}",
                     "number", r->number, "issued", date_or_null(r->issued),
                     "kind", str_or_null(db_rma_kind_name(r->kind)), "vendor", r->vendor,
                     "state", db_rma_status_name(shown_state(cr, r)), "lines", r->lines,
                     "authorised", r->authorised, "received", r->received);
}

/* ---- rma.show --------------------------------------------------------------------- */

static json_t *serial_list(const char *list)
{
    json_t *a = json_array();
    for (const char *p = list; a && *p; ) {
        size_t n = strcspn(p, "|");
        if (json_array_append_new(a, json_stringn(p, n)) < 0) {
            json_decref(a);
            return NULL;
        }
        p += n + (p[n] == '|');
    }
    return a;
}

static int add_line(const db_rma_t *r, void *data)
{
    json_t *j = json_pack("{s:i,s:o,s:o,s:o,s:o,s:o,s:i,s:i,s:o,s:[]}",
                          "line", r->line, "model", str_or_null(r->model),
                          "family", str_or_null(r->family),
                          "purchased", date_or_null(r->purchased),
                          "shipped", date_or_null(r->shipped),
                          "invoiced", date_or_null(r->invoiced),
                          "quantity", r->quantity, "received", r->line_received,
                          "expected_serials", serial_list(r->expected_serials),
                          "received_serials");
    return j && json_array_append_new(data, j) == 0 ? 0 : -ENOMEM;
}

static int add_unit(const db_receipt_t *r, void *data)
{
    json_t *j = control_receipt_json(r);
    json_t *cl = r->checklist ? json_loads(r->checklist, 0, NULL) : NULL;
    json_t *match = json_object_get(cl, "serial_match");
    int bad = !j
              || json_object_set_new(j, "serial_match", match ? json_incref(match) : json_null()) < 0
              || json_object_set_new(j, "line", r->line > 0 ? json_integer(r->line) : json_null()) < 0
              || json_object_set_new(j, "serial", str_or_null(r->serial)) < 0;
    json_decref(cl);
    if (bad) {
        json_decref(j);
        return -ENOMEM;
    }
    return json_array_append_new(data, j) == 0 ? 0 : -ENOMEM;   /* consumes j either way */
}

/* Each line's received serials, from its completed receipts. */
static int fill_received(json_t *lines, const json_t *receipts)
{
    size_t i, k;
    json_t *rc, *ln;
    json_array_foreach(receipts, i, rc) {
        const char *state = json_string_value(json_object_get(rc, "state"));
        json_t *serial = json_object_get(rc, "serial");
        json_int_t line = json_integer_value(json_object_get(rc, "line"));
        /* A mismatched unit is not one of the line's (db.h): listed with the receipts only. */
        if (!state || strcmp(state, "completed") != 0 || !json_is_string(serial)
            || json_is_false(json_object_get(rc, "serial_match")))
            continue;
        json_array_foreach(lines, k, ln) {
            if (json_integer_value(json_object_get(ln, "line")) == line
                && json_array_append(json_object_get(ln, "received_serials"), serial) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* {"cmd": "rma.show", "number": N} -> {"rma": {..., "lines": [...], "receipts": [...]}} */
static int cmd_rma_show(const json_t *req, json_t **reply, void *data)
{
    control_rma_t *cr = data;
    db_rma_t *r;
    int rc;

    const char *number = json_string_value(json_object_get(req, "number"));
    if (!number)
        return refuse(reply, -EINVAL, msgf("number: expected the RMA number as a string"));
    if (!(r = malloc(sizeof(*r))))
        return -ENOMEM;
    rc = db_rma_get(cr->db, number, r);
    if (rc < 0) {
        free(r);
        return refuse(reply, rc, rc == -ENOENT ? msgf("unknown RMA %.64s", number)
                                               : msgf("%s", db_errmsg(cr->db)));
    }
    json_t *rma = rma_summary(cr, r), *lines = json_array(), *receipts = json_array();
    rc = rma && lines && receipts ? 0 : -ENOMEM;
    if (rc == 0 && r->status == DB_RMA_CLOSED) {
        char *why = NULL;
        int64_t at = 0;
        rc = db_rma_closed(cr->db, number, &why, &at);
        if (rc == 0) {
            char ts[CONTROL_TIME_STRLEN];
            control_format_time(at, ts);
            rc = json_object_set_new(rma, "closed_reason", str_or_null(why)) < 0
                 || json_object_set_new(rma, "closed_at", json_string(ts)) < 0 ? -ENOMEM : 0;
        }
        free(why);
    }
    free(r);
    if (rc == 0)
        rc = db_rma_foreach_line(cr->db, number, add_line, lines);
    if (rc == 0)
        rc = db_receipt_foreach_rma(cr->db, number, add_unit, receipts);
    if (rc == 0)
        rc = fill_received(lines, receipts);
    if (rc == 0 && (json_object_set(rma, "lines", lines) < 0
                    || json_object_set(rma, "receipts", receipts) < 0))
        rc = -ENOMEM;
    json_decref(lines);
    json_decref(receipts);
    if (rc < 0) {
        json_decref(rma);
        return refuse(reply, rc, rc == -ENOMEM ? NULL : msgf("%s", db_errmsg(cr->db)));
    }
    *reply = json_pack("{s:o}", "rma", rma);
    return *reply ? 0 : -ENOMEM;
}

/* ---- rma.list --------------------------------------------------------------------- */

struct list_ctx {
    control_rma_t *cr;
    json_t *list;
    int state;
    json_int_t limit;
};

static int add_summary(const db_rma_t *r, void *data)
{
    struct list_ctx *lc = data;
    if (lc->state >= 0 && (int)shown_state(lc->cr, r) != lc->state)
        return 0;
    if ((json_int_t)json_array_size(lc->list) >= lc->limit)
        return 1;   /* enough */
    json_t *j = rma_summary(lc->cr, r);
    return j && json_array_append_new(lc->list, j) == 0 ? 0 : -ENOMEM;
}

/* {"cmd": "rma.list", "state": S, "vendor": V, "limit": N} -> {"rmas": [by number]} */
static int cmd_rma_list(const json_t *req, json_t **reply, void *data)
{
    control_rma_t *cr = data;
    struct list_ctx lc = { cr, NULL, -1, CONTROL_RMAS_DEFAULT };

    json_t *st = json_object_get(req, "state"), *v = json_object_get(req, "vendor");
    json_t *l = json_object_get(req, "limit");
    db_rma_status_t state;
    if (st && (!json_is_string(st) || db_rma_status_parse(json_string_value(st), &state) < 0))
        return refuse(reply, -EINVAL, msgf("state: expected open, partial, received, expired "
                                           "or closed"));
    if (st)
        lc.state = (int)state;
    if (v && !json_is_string(v))
        return refuse(reply, -EINVAL, msgf("vendor: expected a string"));
    if (l) {
        if (!json_is_integer(l) || json_integer_value(l) < 1
            || json_integer_value(l) > CONTROL_RMAS_MAX)
            return refuse(reply, -EINVAL, msgf("limit: expected an integer from 1 to %d",
                                               CONTROL_RMAS_MAX));
        lc.limit = json_integer_value(l);
    }
    if (!(lc.list = json_array()))
        return -ENOMEM;
    /* Expired is the policy's verdict: filter here, not in SQL. */
    int rc = db_rma_list(cr->db, lc.state == DB_RMA_EXPIRED ? -1 : lc.state,
                         v ? json_string_value(v) : NULL, add_summary, &lc);
    if (rc < 0) {
        json_decref(lc.list);
        return refuse(reply, rc, rc == -ENOMEM ? NULL : msgf("%s", db_errmsg(cr->db)));
    }
    *reply = json_pack("{s:o}", "rmas", lc.list);
    return *reply ? 0 : -ENOMEM;
}

/* ---- rma.close -------------------------------------------------------------------- */

/* {"cmd": "rma.close", "number": N, "reason": TEXT} -> {"number", "state": "closed"} */
static int cmd_rma_close(const json_t *req, json_t **reply, void *data)
{
    control_rma_t *cr = data;

    const char *number = json_string_value(json_object_get(req, "number"));
    const char *reason = json_string_value(json_object_get(req, "reason"));
    if (!number)
        return refuse(reply, -EINVAL, msgf("number: expected the RMA number as a string"));
    if (!reason || !*reason || strlen(reason) > CONTROL_REASON_MAX)
        return refuse(reply, -EINVAL, msgf("reason: required, at most %d bytes (it is shown "
                                           "when the RMA is scanned)", CONTROL_REASON_MAX));
    for (const char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return refuse(reply, -EINVAL, msgf("reason: one line of text, no control characters"));
    if (db_in_transaction(cr->db))
        return refuse(reply, -EBUSY, msgf("database busy, retry"));

    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int rc = txn_begin(cr->txn);
    if (rc == 0 && (rc = db_rma_close(cr->db, number, reason, now)) < 0)
        txn_rollback(cr->txn, rc);
    else if (rc == 0)
        rc = txn_commit(cr->txn);
    if (rc < 0) {
        char *msg = rc == -ENOENT ? msgf("unknown RMA %.64s", number) : msgf("%s", db_errmsg(cr->db));
        return refuse(reply, rc, msg);
    }
    *reply = json_pack("{s:s,s:s}", "number", number, "state", "closed");
    return *reply ? 0 : -ENOMEM;
}

/* ---- setting up ------------------------------------------------------------------- */

control_rma_t *control_rma_new(control_t *ctl, txn_t *txn)
{
    control_rma_t *cr = calloc(1, sizeof(*cr));
    if (!cr)
        return NULL;
    cr->txn = txn;
    cr->db = txn_db(txn);
    static const char *const show_keys[] = { "number", NULL };
    static const char *const list_keys[] = { "state", "vendor", "limit", NULL };
    static const char *const close_keys[] = { "number", "reason", NULL };
    if (control_register(ctl, "rma.show", show_keys, cmd_rma_show, cr) < 0
        || control_register(ctl, "rma.list", list_keys, cmd_rma_list, cr) < 0
        || control_register(ctl, "rma.close", close_keys, cmd_rma_close, cr) < 0) {
        free(cr);
        return NULL;
    }
    return cr;
}

void control_rma_set_expiry(control_rma_t *cr, control_rma_expiry_fn fn, void *data)
{
    cr->expired = fn;
    cr->expired_data = data;
}

void control_rma_destroy(control_rma_t **cr_p)
{
    if (!cr_p || !*cr_p)
        return;
    free(*cr_p);
    *cr_p = NULL;
}
