/*
 * Retention (daemon/retention.h): one timer, one batch per run.
 */
#include "daemon/retention.h"

#include <errno.h>
#include <stdlib.h>

#include "db/maint.h"

#define DAY_MS (24 * 3600 * 1000LL)

struct retention {
    loop_t *loop;
    db_t *db;
    int days;
    char *const *subscribers;
    size_t nsubscribers;
    retention_busy_fn busy;
    retention_report_fn report;
    void *data;
    uint64_t timer;
    retention_report_t pass;  /* the pass in progress */
};

/* The first seq no configured subscriber has acknowledged (UINT64_MAX: none named). */
static int keep_from(retention_t *r, uint64_t *keep)
{
    uint64_t k = UINT64_MAX;
    for (size_t i = 0; i < r->nsubscribers; i++) {
        uint64_t acked = 0;
        int rc = db_subscriber_acked(r->db, r->subscribers[i], &acked);
        if (rc < 0)
            return rc;
        if (acked + 1 < k)
            k = acked + 1;
    }
    *keep = k;
    return 0;
}

static int64_t retention_run(loop_t *loop, uint64_t id, void *data)
{
    retention_t *r = data;
    (void)loop;
    (void)id;
    if (db_in_transaction(r->db) || (r->busy && r->busy(r->data)))
        return RETENTION_IDLE_RETRY_MS;
    int64_t cutoff = loop_wall_ms() - (int64_t)r->days * DAY_MS;
    db_retention_t got = { 0 };
    int rc = keep_from(r, &r->pass.keep_seq);
    if (rc == 0)
        rc = db_retention_batch(r->db, cutoff, r->pass.keep_seq, DB_RETENTION_BATCH, &got);
    if (rc == -EBUSY)
        return RETENTION_BUSY_RETRY_MS;
    if (rc < 0) {
        r->pass.error = db_errmsg(r->db);
        r->report(&r->pass, r->data);
    } else {
        r->pass.scans += got.scans;
        r->pass.events += got.events;
        if (got.scans == DB_RETENTION_BATCH || got.events == DB_RETENTION_BATCH)
            return RETENTION_GAP_MS;                  /* more to delete: after a pause */
        r->report(&r->pass, r->data);
    }
    r->pass = (retention_report_t){ 0 };
    return RETENTION_PERIOD_MS;
}

retention_t *retention_new(loop_t *loop, db_t *db, int days, char *const *subscribers,
                           size_t n, retention_busy_fn busy, retention_report_fn report,
                           void *data)
{
    if (!loop || !db || days < 1 || !report)
        return NULL;
    retention_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    *r = (retention_t){ .loop = loop, .db = db, .days = days, .subscribers = subscribers,
                        .nsubscribers = n, .busy = busy, .report = report, .data = data };
    r->timer = loop_add_timer(loop, RETENTION_START_MS, retention_run, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }
    return r;
}

void retention_destroy(retention_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    (void)loop_del_timer((*r_p)->loop, (*r_p)->timer);
    free(*r_p);
    *r_p = NULL;
}
