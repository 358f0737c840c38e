/*
 * What a receipt's label says, from the rows the daemon wrote: the receipt (state,
 * RMA, serial, station, closing time, refusal reason), its policy result (disposition,
 * fee, flags, first reason) and the RMA (vendor, model).
 */
#include "labels/receipt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/msgf.h"

void label_receipt_clear(label_receipt_t *lr)
{
    if (!lr)
        return;
    db_receipt_clear(&lr->receipt);
    json_decref(lr->result);
    memset(lr, 0, sizeof(*lr));
}

/* The policy result's fields, as `rmactl policy eval` prints them (spec policy-eval). */
static int take_result(label_receipt_t *lr)
{
    json_error_t je;
    lr->result = json_loads(lr->receipt.result, 0, &je);
    if (!json_is_object(lr->result))
        return -EBADMSG;
    json_t *fee = json_object_get(lr->result, "restocking_fee_pct");
    if (json_is_number(fee))
        lr->label.restocking_fee_pct = json_number_value(fee);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(lr->result, "flags"), i, v) {
        if (json_is_string(v) && lr->label.n_flags < LABEL_RECEIPT_FLAGS_MAX)
            lr->flags[lr->label.n_flags++] = json_string_value(v);
    }
    lr->label.flags = lr->flags;
    json_t *first = json_array_get(json_object_get(lr->result, "reasons"), 0);
    lr->label.reason = json_string_value(json_object_get(first, "text"));
    return 0;
}

int label_receipt_load(db_t *db, int64_t id, label_receipt_t *out, char **errmsg)
{
    label_receipt_t lr = { 0 };
    if (errmsg)
        *errmsg = NULL;

    int r = db_receipt_get(db, id, &lr.receipt);
    if (r == -ENOENT) {
        msgf_set(errmsg, "no receipt %lld", (long long)id);
        return r;
    }
    if (r < 0) {
        msgf_set(errmsg, "receipt %lld: %s", (long long)id, db_errmsg(db));
        return r;
    }
    db_receipt_t *rc = &lr.receipt;
    if (rc->state != DB_RECEIPT_COMPLETED && rc->state != DB_RECEIPT_REFUSED) {
        msgf_set(errmsg, "receipt %lld is %s: it has no label%s", (long long)id,
                db_receipt_state_name(rc->state), rc->state == DB_RECEIPT_OPEN ? " yet" : "");
        label_receipt_clear(&lr);
        return -EINVAL;
    }
    lr.label.receipt_id = rc->id;
    lr.label.rma = rc->rma;
    lr.label.serial = rc->serial;
    lr.label.station = rc->station;
    if (event_time_format(rc->closed_at, lr.time) == 0)
        lr.label.time = lr.time;
    if (rc->state == DB_RECEIPT_REFUSED) {
        lr.label.refusal = true;
        lr.label.disposition = "refuse";
        lr.label.reason = rc->reason;
    } else {
        lr.label.disposition = rc->disposition;
        if (!rc->result || take_result(&lr) < 0) {
            msgf_set(errmsg, "receipt %lld: its stored policy result cannot be read",
                    (long long)id);
            label_receipt_clear(&lr);
            return -EBADMSG;
        }
    }
    /* An unknown RMA (a refusal) or none (CMD-NORMA) has no vendor or model to show. */
    if (rc->rma) {
        /* The unit's own line: its model (issue 11). */
        r = db_rma_get_line(db, rc->rma, rc->line, &lr.rma);
        if (r == -ENOENT && rc->line)
            r = db_rma_get(db, rc->rma, &lr.rma);
        int k = 0;
        if (r == 0 && lr.rma.authorised > 1 && rc->state == DB_RECEIPT_COMPLETED
            && (r = db_rma_unit_number(db, rc->rma, rc->id, &k)) == 0 && k > 0) {
            snprintf(lr.unit, sizeof(lr.unit), "%d of %d", k, lr.rma.authorised);
            lr.label.unit = lr.unit;
        }
        if (r == 0) {
            lr.label.vendor = lr.rma.vendor[0] ? lr.rma.vendor : NULL;
            lr.label.model = lr.rma.model[0] ? lr.rma.model : NULL;
        } else if (r != -ENOENT) {
            msgf_set(errmsg, "receipt %lld: %s", (long long)id, db_errmsg(db));
            label_receipt_clear(&lr);
            return r;
        }
    }
    *out = lr;
    /* The label's pointers into lr's arrays must follow the copy. */
    out->label.flags = out->flags;
    if (out->label.time)
        out->label.time = out->time;
    if (out->label.vendor)
        out->label.vendor = out->rma.vendor;
    if (out->label.model)
        out->label.model = out->rma.model;
    if (out->label.unit)
        out->label.unit = out->unit;
    return 0;
}
