/*
 * A receipt's label: the label_t of a refused or completed receipt, read from the
 * database. The one place that decides what a receipt's label says, used by the
 * daemon's spooler (printing) and by `rmactl label` (a supervisor's preview), so a
 * preview always shows what the printer gets.
 */
#ifndef RMAD_LABELS_RECEIPT_H
#define RMAD_LABELS_RECEIPT_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "labels/label.h"
#include "proto/event.h"

#define LABEL_RECEIPT_FLAGS_MAX 8

typedef struct {
    label_t label;          /* ready to render; its strings point into the fields below */
    db_receipt_t receipt;   /* owned */
    db_rma_t rma;           /* vendor and model, when the RMA is known */
    json_t *result;         /* the policy result, owned; NULL for a refusal */
    const char *flags[LABEL_RECEIPT_FLAGS_MAX];
    char time[EVENT_TIME_STRLEN];   /* when the receipt closed, RFC 3339 */
    char unit[32];          /* "2 of 4" */
} label_receipt_t;

/*
 * Load receipt `id` and fill *out. Returns 0, or -ENOENT (no such receipt), -EINVAL
 * (the receipt is open or cancelled: it has no label), -EBADMSG (its stored result is
 * not the JSON the daemon writes), -ENOMEM, or a database error; on failure *errmsg
 * (may be NULL) is a malloc'd line such as "receipt 12 is open: it has no label yet".
 * *out is untouched on failure; release it with label_receipt_clear.
 */
int label_receipt_load(db_t *db, int64_t id, label_receipt_t *out, char **errmsg);

/* Free what label_receipt_load filled. NULL is fine. */
void label_receipt_clear(label_receipt_t *lr);

#endif
