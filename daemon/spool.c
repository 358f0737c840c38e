/*
 * The print spooler (see spool.h). State that matters lives in the database; what is
 * kept here only avoids doing the same thing twice in one process: which printer has a
 * submission in flight, which submitted jobs are being followed, and each printer's
 * backoff.
 */
#include "daemon/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/msgf.h"
#include "labels/label.h"
#include "labels/printer.h"
#include "labels/receipt.h"

#define FOLLOWED_MAX 4096   /* submitted jobs followed at once; more wait in the db */

/* One CUPS queue as the spooler sees it. */
typedef struct {
    char *name;
    int64_t submitting;     /* print_jobs id handed to the worker for submission, 0 none */
    int64_t delay_ms;       /* next backoff; 0 after a success */
    int64_t until_ms;       /* wall clock: no new attempt before (backoff) */
} pq_t;

struct spool {
    loop_t *loop;
    db_t *db;
    outbox_t *ob;
    const config_t *cfg;
    spool_note_fn fn;
    void *data;
    printer_t *printer;

    pq_t *pqs;
    size_t npqs;
    int64_t *followed;      /* submitted print_jobs ids the worker follows */
    size_t nfollowed;

    uint64_t timer;         /* the next pump, 0 when none is scheduled */
    int64_t timer_at;       /* its wall-clock due time */
};

static pq_t *pq_get(spool_t *sp, const char *name)
{
    for (size_t i = 0; i < sp->npqs; i++)
        if (strcmp(sp->pqs[i].name, name) == 0)
            return &sp->pqs[i];
    pq_t *n = realloc(sp->pqs, (sp->npqs + 1) * sizeof(*n));
    if (!n)
        return NULL;
    sp->pqs = n;
    pq_t *q = &n[sp->npqs];
    *q = (pq_t){ .name = strdup(name) };
    if (!q->name)
        return NULL;
    sp->npqs++;
    return q;
}

static bool is_followed(const spool_t *sp, int64_t id)
{
    for (size_t i = 0; i < sp->nfollowed; i++)
        if (sp->followed[i] == id)
            return true;
    return false;
}

static void unfollow(spool_t *sp, int64_t id)
{
    for (size_t i = 0; i < sp->nfollowed; i++)
        if (sp->followed[i] == id) {
            sp->followed[i] = sp->followed[--sp->nfollowed];
            return;
        }
}

static const config_station_t *station_cfg(const spool_t *sp, const char *name)
{
    for (size_t i = 0; i < sp->cfg->nstations; i++)
        if (strcmp(sp->cfg->stations[i].name, name) == 0)
            return &sp->cfg->stations[i];
    return NULL;
}

static void note(spool_t *sp, const spool_note_t *n)
{
    sp->fn(n, sp->data);
}

static void note_db_error(spool_t *sp, const db_print_job_t *job, const char *what)
{
    char *msg = NULL;
    if (asprintf(&msg, "%s: %s", what, db_errmsg(sp->db)) < 0)
        msg = NULL;
    spool_note_t n = { .kind = SPOOL_ERROR, .label = job->id, .receipt = job->receipt_id,
                       .station = job->station, .printer = job->printer,
                       .error = msg ? msg : what };
    note(sp, &n);
    free(msg);
}

/* ---- recording answers ---------------------------------------------------------- */

/*
 * One transaction: the row's new state and its event. Returns 0 once committed (the
 * outbox then holds the event), or a negative errno with everything rolled back.
 */
static int record(spool_t *sp, const db_print_job_t *job, const char *topic, json_t *fields,
                  int (*change)(spool_t *, const db_print_job_t *, const void *),
                  const void *arg)
{
    int r = db_begin(sp->db);
    if (r == 0)
        r = change(sp, job, arg);
    if (r == 0 && topic)
        r = outbox_append(sp->ob, sp->db, topic, fields, job->station, job->receipt_id,
                          loop_wall_ms());
    if (r == 0)
        r = db_commit(sp->db);
    else
        (void)db_rollback(sp->db);
    if (r < 0)
        outbox_discard(sp->ob);
    return r;
}

static int change_submitted(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    return db_print_submitted(sp->db, job->id, *(const int *)arg);
}

static int change_printed(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    (void)arg;
    return db_print_printed(sp->db, job->id, loop_wall_ms());
}

struct failure {
    const char *error;
    bool final;
    int64_t next_at;
};

static int change_failed(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    const struct failure *f = arg;
    return f->final ? db_print_cancelled(sp->db, job->id, f->error, loop_wall_ms())
                    : db_print_retry(sp->db, job->id, f->error, f->next_at);
}

/* The label's identity in its events: which label, why, where. */
static json_t *label_fields(const db_print_job_t *job)
{
    return json_pack("{s:I, s:s, s:s}", "label", (json_int_t)job->id, "why",
                     db_print_why_name(job->why), "printer", job->printer);
}

static void schedule(spool_t *sp, int64_t at_ms);

/*
 * An attempt failed: back off the printer, and record label.failed with the error.
 * A final failure (cancelled by an operator, or a label that cannot be made) ends the
 * row; any other waits for the printer's next attempt.
 */
static void failed(spool_t *sp, const db_print_job_t *job, int cups_job, const char *error,
                   bool final)
{
    pq_t *q = pq_get(sp, job->printer);
    int64_t now = loop_wall_ms(), delay = 0;
    if (q && !final) {
        int64_t base = sp->cfg->print_retry_ms, max = sp->cfg->print_retry_max_ms;
        delay = q->delay_ms ? q->delay_ms : base;
        q->delay_ms = delay * 2 > max ? max : delay * 2;
        q->until_ms = now + delay;
    }
    struct failure f = { .error = error, .final = final, .next_at = now + delay };
    json_t *fields = label_fields(job);
    int bad = !fields || json_object_set_new(fields, "error", json_string(error)) < 0 ||
              json_object_set_new(fields, "final", json_boolean(final)) < 0;
    if (!bad && cups_job > 0)
        bad = json_object_set_new(fields, "job", json_integer(cups_job)) < 0;
    if (!bad && !final)
        bad = json_object_set_new(fields, "retry_in_ms", json_integer(delay)) < 0;
    int r = bad ? -ENOMEM : record(sp, job, "label.failed", fields, change_failed, &f);
    json_decref(fields);
    if (r < 0) {
        note_db_error(sp, job, "recording a failed label");
        schedule(sp, now + sp->cfg->print_retry_ms);
        return;
    }
    spool_note_t n = { .kind = SPOOL_FAILED, .label = job->id, .receipt = job->receipt_id,
                       .station = job->station, .printer = job->printer,
                       .cups_job = cups_job, .error = error, .final = final,
                       .retry_in_ms = delay };
    note(sp, &n);
    if (!final)
        schedule(sp, now + delay);
}

/* ---- the worker's answers --------------------------------------------------------- */

static void printer_cb(const printer_event_t *ev, void *data)
{
    spool_t *sp = data;
    db_print_job_t job;
    int64_t id = (int64_t)ev->tag;

    pq_t *q = pq_get(sp, ev->queue);
    if (q && q->submitting == id && ev->kind != PRINTER_EV_COMPLETED)
        q->submitting = 0;
    if (ev->kind != PRINTER_EV_SUBMITTED)
        unfollow(sp, id);

    if (db_print_get(sp->db, id, &job) < 0) {
        db_print_job_t unknown = { .id = id, .printer = (char *)ev->queue };
        note_db_error(sp, &unknown, "print job");
        return;
    }
    /* A row already final (reprinted by hand meanwhile, say) takes no more answers. */
    if (job.state == DB_PRINT_PRINTED || job.state == DB_PRINT_CANCELLED)
        goto out;

    switch (ev->kind) {
    case PRINTER_EV_SUBMITTED: {
        int cups_job = ev->job_id;
        if (record(sp, &job, NULL, NULL, change_submitted, &cups_job) < 0) {
            note_db_error(sp, &job, "recording a submitted label");
            break;
        }
        if (q)
            q->delay_ms = 0;
        if (sp->nfollowed < FOLLOWED_MAX && !is_followed(sp, id))
            sp->followed[sp->nfollowed++] = id;
        spool_kick(sp);   /* the printer's next label may go now */
        break;
    }
    case PRINTER_EV_COMPLETED: {
        json_t *fields = label_fields(&job);
        int r = -ENOMEM;
        if (fields && json_object_set_new(fields, "job", json_integer(ev->job_id)) == 0)
            r = record(sp, &job, "label.printed", fields, change_printed, NULL);
        json_decref(fields);
        if (r < 0) {
            note_db_error(sp, &job, "recording a printed label");
            break;
        }
        spool_note_t n = { .kind = SPOOL_PRINTED, .label = job.id, .receipt = job.receipt_id,
                           .station = job.station, .printer = job.printer,
                           .cups_job = ev->job_id };
        note(sp, &n);
        break;
    }
    case PRINTER_EV_FAILED:
        failed(sp, &job, ev->job_id, ev->error ? ev->error : "printing failed", !ev->retry);
        break;
    }
out:
    db_print_job_clear(&job);
}

/* ---- attempts ------------------------------------------------------------------- */

/* ZPL goes to CUPS raw (CUPS_FORMAT_RAW): the printer itself interprets it. */
static const struct {
    label_format_t fmt;
    const char *mime;
} formats[] = {
    [CONFIG_LABEL_ZPL] = { LABEL_ZPL, PRINTER_FORMAT_RAW },
    [CONFIG_LABEL_PDF] = { LABEL_PDF, PRINTER_FORMAT_PDF },
};

/*
 * Render a queued row's label in its station's format and hand it to the worker.
 * A label that cannot be made from the database is a final failure: retrying would
 * give the same answer.
 */
static void submit(spool_t *sp, pq_t *q, const db_print_job_t *job)
{
    label_receipt_t lr;
    char *err = NULL;
    int r = label_receipt_load(sp->db, job->receipt_id, &lr, &err);
    if (r < 0) {
        bool final = r != -ENOMEM && r != -EBUSY && r != -EIO;
        failed(sp, job, 0, err ? err : "the label cannot be made", final);
        free(err);
        return;
    }
    /* A station taken out of the config keeps printing its labels, as 4x6 ZPL. */
    const config_station_t *st = station_cfg(sp, job->station);
    config_label_format_t f = st ? st->label_format : CONFIG_LABEL_ZPL;
    label_size_t size = st && st->label_size == CONFIG_LABEL_2X1 ? LABEL_2X1 : LABEL_4X6;
    int dpi = st ? st->label_dpi : 203;
    uint8_t *bytes = NULL;
    size_t len = 0;
    r = label_render(&lr.label, formats[f].fmt, size, dpi, &bytes, &len);
    label_receipt_clear(&lr);
    if (r < 0) {
        char why[96];
        snprintf(why, sizeof(why), "rendering the label: %s", strerror(-r));
        failed(sp, job, 0, why, false);
        return;
    }
    char title[64];
    snprintf(title, sizeof(title), "rmad receipt %lld (%s)", (long long)job->receipt_id,
             db_print_why_name(job->why));
    r = printer_submit(sp->printer, (uint64_t)job->id, job->printer, formats[f].mime, title,
                       bytes, len);
    free(bytes);
    if (r < 0) {
        char why[96];
        snprintf(why, sizeof(why), "handing the label to the printer worker: %s", strerror(-r));
        failed(sp, job, 0, why, false);
        return;
    }
    q->submitting = job->id;
}

struct pump {
    spool_t *sp;
    int64_t now;
    int64_t next;              /* earliest wall time something becomes due, or INT64_MAX */
    db_print_job_t *due;       /* copies of the rows to act on after the walk */
    size_t ndue;
    char **seen;               /* printers whose oldest queued row was met */
    size_t nseen;
    int oom;
};

static bool seen_printer(struct pump *p, const char *printer)
{
    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i], printer) == 0)
            return true;
    char **n = realloc(p->seen, (p->nseen + 1) * sizeof(*n));
    if (!n || !(n[p->nseen] = strdup(printer))) {
        if (n)
            p->seen = n;
        p->oom = 1;
        return true;
    }
    p->seen = n;
    p->nseen++;
    return false;
}

static int copy_due(struct pump *p, const db_print_job_t *job)
{
    db_print_job_t *n = realloc(p->due, (p->ndue + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    p->due = n;
    n[p->ndue] = *job;
    n[p->ndue].station = strdup(job->station);
    n[p->ndue].printer = strdup(job->printer);
    n[p->ndue].last_error = NULL;
    if (!n[p->ndue].station || !n[p->ndue].printer) {
        db_print_job_clear(&n[p->ndue]);
        return -ENOMEM;
    }
    p->ndue++;
    return 0;
}

/* The walk decides; the actions run after it, as they write to the database. */
static int pump_row(const db_print_job_t *job, void *data)
{
    struct pump *p = data;
    spool_t *sp = p->sp;

    if (job->state == DB_PRINT_SUBMITTED) {
        if (!is_followed(sp, job->id) && sp->nfollowed < FOLLOWED_MAX)
            return copy_due(p, job);
        return 0;
    }
    /* Queue order per printer: only its oldest queued label may go. */
    if (seen_printer(p, job->printer))
        return 0;
    pq_t *q = pq_get(sp, job->printer);
    if (!q)
        return -ENOMEM;
    if (q->submitting)
        return 0;   /* the worker's answer kicks the next pump */
    int64_t due = job->next_at > q->until_ms ? job->next_at : q->until_ms;
    if (due > p->now) {
        if (due < p->next)
            p->next = due;
        return 0;
    }
    return copy_due(p, job);
}

static void pump(spool_t *sp)
{
    struct pump p = { .sp = sp, .now = loop_wall_ms(), .next = INT64_MAX };
    int r = db_print_foreach_unfinished(sp->db, pump_row, &p);
    if (r < 0 || p.oom) {
        db_print_job_t none = { .printer = "" };
        note_db_error(sp, &none, "reading the print queue");
        if (p.now + sp->cfg->print_retry_ms < p.next)
            p.next = p.now + sp->cfg->print_retry_ms;
    }
    for (size_t i = 0; i < p.ndue; i++) {
        db_print_job_t *job = &p.due[i];
        if (job->state == DB_PRINT_SUBMITTED) {
            /* Submitted before a restart: follow the CUPS job, never submit again. */
            if (sp->nfollowed < FOLLOWED_MAX &&
                printer_follow(sp->printer, (uint64_t)job->id, job->printer, job->cups_job) == 0)
                sp->followed[sp->nfollowed++] = job->id;
        } else {
            pq_t *q = pq_get(sp, job->printer);
            if (q)
                submit(sp, q, job);
        }
        db_print_job_clear(job);
    }
    free(p.due);
    for (size_t i = 0; i < p.nseen; i++)
        free(p.seen[i]);
    free(p.seen);
    if (p.next != INT64_MAX)
        schedule(sp, p.next);
}

static int64_t timer_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    spool_t *sp = data;
    sp->timer = 0;
    pump(sp);
    return -1;
}

/* Pump at wall time at_ms (or sooner, when a pump is already due before). */
static void schedule(spool_t *sp, int64_t at_ms)
{
    if (sp->timer && sp->timer_at <= at_ms)
        return;
    if (sp->timer)
        (void)loop_del_timer(sp->loop, sp->timer);
    int64_t delay = at_ms - loop_wall_ms();
    sp->timer = loop_add_timer(sp->loop, delay > 0 ? delay : 0, timer_cb, sp);
    sp->timer_at = at_ms;
}

void spool_kick(spool_t *sp)
{
    schedule(sp, 0);
}

/* ---- life ----------------------------------------------------------------------- */

spool_t *spool_new(loop_t *loop, db_t *db, outbox_t *ob, const config_t *cfg,
                   spool_note_fn fn, void *data, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    spool_t *sp = calloc(1, sizeof(*sp));
    if (!sp || !(sp->followed = calloc(FOLLOWED_MAX, sizeof(*sp->followed)))) {
        free(sp);
        msgf_set(errmsg, "print spooler: out of memory");
        return NULL;
    }
    *sp = (spool_t){ .loop = loop, .db = db, .ob = ob, .cfg = cfg, .fn = fn, .data = data,
                     .followed = sp->followed };
    if (!(sp->printer = printer_new(loop, printer_cb, sp))) {
        msgf_set(errmsg, "print spooler: starting the printer worker: %s", strerror(errno));
        free(sp->followed);
        free(sp);
        return NULL;
    }
    spool_kick(sp);
    return sp;
}

void spool_destroy(spool_t **spp)
{
    if (!spp || !*spp)
        return;
    spool_t *sp = *spp;
    printer_destroy(&sp->printer);
    if (sp->timer)
        (void)loop_del_timer(sp->loop, sp->timer);
    for (size_t i = 0; i < sp->npqs; i++)
        free(sp->pqs[i].name);
    free(sp->pqs);
    free(sp->followed);
    free(sp);
    *spp = NULL;
}

int spool_reprint(spool_t *sp, int64_t receipt, int64_t *label, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    db_receipt_t r;
    int rc = db_receipt_get(sp->db, receipt, &r);
    if (rc < 0) {
        if (rc == -ENOENT)
            msgf_set(errmsg, "no receipt %lld", (long long)receipt);
        else
            msgf_set(errmsg, "receipt %lld: %s", (long long)receipt, db_errmsg(sp->db));
        return rc;
    }
    const config_station_t *st = station_cfg(sp, r.station);
    if (r.state != DB_RECEIPT_COMPLETED && r.state != DB_RECEIPT_REFUSED) {
        msgf_set(errmsg, "receipt %lld is %s: it has no label", (long long)receipt,
                db_receipt_state_name(r.state));
        rc = -EINVAL;
    } else if (!st || !st->printer) {
        msgf_set(errmsg, "receipt %lld: station %s %s", (long long)receipt, r.station,
                st ? "has no printer" : "is not in the configuration");
        rc = -ENODEV;
    } else {
        rc = db_begin(sp->db);
        if (rc == 0)
            rc = db_print_enqueue(sp->db, receipt, r.station, st->printer, DB_PRINT_REPRINT,
                                  loop_wall_ms(), label);
        if (rc == 0)
            rc = db_commit(sp->db);
        else
            (void)db_rollback(sp->db);
        if (rc < 0)
            msgf_set(errmsg, "queueing the label: %s", db_errmsg(sp->db));
        else
            spool_kick(sp);
    }
    db_receipt_clear(&r);
    return rc;
}

static int count_row(const db_print_job_t *job, void *data)
{
    spool_status_t *s = data;
    if (job->state == DB_PRINT_QUEUED)
        s->queued++;
    else
        s->submitted++;
    return 0;
}

int spool_status(spool_t *sp, spool_status_t *out)
{
    spool_status_t s = { 0 };
    int r = db_print_foreach_unfinished(sp->db, count_row, &s);
    if (r == 0)
        *out = s;
    return r;
}
