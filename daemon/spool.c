/*
 * The print spooler (see spool.h). State that matters lives in the database; what is
 * kept here only avoids doing the same thing twice in one process: which printer has a
 * submission in flight, which labels the worker has (submitting, searched, followed),
 * each printer's backoff, its health, and what its last published failure said.
 */
#include "daemon/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msgf.h"
#include "labels/label.h"
#include "labels/printer.h"
#include "labels/receipt.h"
#include "proto/event.h"

/* A failing printer's label.failed reminder, at most this often. */
#define FAILED_REMINDER_MS (15 * 60 * 1000)

/* One CUPS queue as the spooler sees it. */
typedef struct {
    char *name;
    int64_t submitting;     /* print_jobs id handed to the worker for submission, 0 none */
    int64_t delay_ms;       /* next backoff; 0 after a success */
    int64_t until_ms;       /* monotonic: no new attempt before (backoff) */
    bool known;             /* health read at least once */
    printer_condition_t condition;
    char *reasons, *message;
    char *failed_key;       /* what the last published label.failed said, digits out */
    int64_t failed_at_ms;   /* monotonic: when it was published */
} pq_t;

struct spool {
    loop_t *loop;
    db_t *db;
    txn_t *txn;             /* the daemon's unit of work: the events go out after COMMIT */
    const config_t *cfg;
    spool_note_fn fn;
    void *data;
    printer_t *printer;

    pq_t *pqs;
    size_t npqs;
    /* Labels the worker has: the worker's own bound is the bound here too. */
    int64_t tracked[PRINTER_MAX_REQUESTS];
    size_t ntracked;

    uint64_t timer;         /* the next pump, 0 when none is scheduled */
    int64_t timer_at;       /* its monotonic due time */
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

static bool is_tracked(const spool_t *sp, int64_t id)
{
    for (size_t i = 0; i < sp->ntracked; i++)
        if (sp->tracked[i] == id)
            return true;
    return false;
}

/* The worker accepted id: its answers will come. Cannot overflow: see enqueue. */
static void track(spool_t *sp, int64_t id)
{
    if (!is_tracked(sp, id) && sp->ntracked < PRINTER_MAX_REQUESTS)
        sp->tracked[sp->ntracked++] = id;
}

static void untrack(spool_t *sp, int64_t id)
{
    for (size_t i = 0; i < sp->ntracked; i++)
        if (sp->tracked[i] == id) {
            sp->tracked[i] = sp->tracked[--sp->ntracked];
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
    char *msg = msgf("%s: %s", what, db_errmsg(sp->db));
    spool_note_t n = { .kind = SPOOL_ERROR, .label = job->id, .receipt = job->receipt_id,
                       .station = job->station, .printer = job->printer,
                       .error = msg ? msg : what };
    note(sp, &n);
    free(msg);
}

static void schedule(spool_t *sp, int64_t at_ms);

/* After a failure to record something: look at the database again later. */
static void retry_later(spool_t *sp)
{
    schedule(sp, loop_now_ms() + sp->cfg->print_retry_ms);
}

/* ---- recording answers ---------------------------------------------------------- */

/*
 * One transaction: the row's new state (change, may be NULL) and its event (topic,
 * may be NULL). Returns 0 once committed (the outbox then holds the event), or a
 * negative errno with everything rolled back.
 */
static int record(spool_t *sp, const db_print_job_t *job, const char *topic, json_t *fields,
                  int (*change)(spool_t *, const db_print_job_t *, const void *),
                  const void *arg)
{
    int r = txn_begin(sp->txn);
    if (r == 0 && change)
        r = change(sp, job, arg);
    if (r == 0 && topic)
        r = txn_event(sp->txn, topic, fields, job->station, job->receipt_id, loop_wall_ms());
    if (r < 0) {
        txn_rollback(sp->txn, r);
        return r;
    }
    return txn_commit(sp->txn);
}

struct submitted {
    int cups_job;
    const char *uuid;
};

static int change_submitted(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    const struct submitted *s = arg;
    return db_print_submitted(sp->db, job->id, s->cups_job, s->uuid);
}

static int change_printed(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    (void)arg;
    return db_print_printed(sp->db, job->id, loop_wall_ms());
}

struct failure {
    const char *error;
    bool final;
};

static int change_failed(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    const struct failure *f = arg;
    return f->final ? db_print_failed(sp->db, job->id, f->error, loop_wall_ms())
                    : db_print_retry(sp->db, job->id, f->error);
}

static int change_cancelled(spool_t *sp, const db_print_job_t *job, const void *arg)
{
    return db_print_cancel(sp->db, job->id, arg, loop_wall_ms());
}

/* The label's identity in its events: which label, why, where. */
static json_t *label_fields(const db_print_job_t *job)
{
    return json_pack("{s:I, s:s, s:s}", "label", (json_int_t)job->id, "why",
                     db_print_why_name(job->why), "printer", job->printer);
}

/* The health of q as event and status fields. */
static json_t *health_json(const pq_t *q)
{
    return json_pack("{s:s, s:s, s:s}", "state",
                     q && q->known ? printer_condition_name(q->condition) : "unknown",
                     "reasons", q && q->reasons ? q->reasons : "",
                     "message", q && q->message ? q->message : "");
}

/*
 * What a failure says, for "is this a change": the text without its numbers, so the
 * same fault on the next job ("CUPS job 12 ... aborted", then 13) is the same fault.
 */
static char *failure_key(const char *error)
{
    char *k = strdup(error ? error : "");
    if (!k)
        return NULL;
    char *w = k;
    for (const char *r = k; *r; r++)
        if (*r < '0' || *r > '9')
            *w++ = *r;
    *w = '\0';
    return k;
}

/*
 * Whether a failure of q's is news: final ones always are; others when they say
 * something else than the last one published, or 15 minutes after it. Remembers it
 * when it is.
 */
static bool failure_is_news(pq_t *q, const char *error, bool final)
{
    if (!q)
        return true;
    char *key = failure_key(error);
    int64_t now = loop_now_ms();
    bool news = final || !key || !q->failed_key || strcmp(key, q->failed_key) != 0 ||
                now - q->failed_at_ms >= FAILED_REMINDER_MS;
    if (news && !final) {
        free(q->failed_key);
        q->failed_key = key;
        q->failed_at_ms = now;
        key = NULL;
    }
    free(key);
    return news;
}

/*
 * An attempt failed: record it in the row (always) and, when it is news, publish
 * label.failed with the error and the printer's health. A final failure (cancelled by
 * an operator in CUPS, a label that cannot be made) ends the row; any other waits for
 * the printer's next attempt: after the backoff, or at once when CUPS lost the job
 * (nothing of it will print, and the printer itself is fine).
 */
static void failed(spool_t *sp, const db_print_job_t *job, int cups_job, const char *error,
                   bool final, bool lost)
{
    pq_t *q = pq_get(sp, job->printer);
    int64_t now = loop_now_ms(), delay = 0;
    if (q && !final && !lost) {
        int64_t base = sp->cfg->print_retry_ms, max = sp->cfg->print_retry_max_ms;
        delay = q->delay_ms ? q->delay_ms : base;
        q->delay_ms = delay * 2 > max ? max : delay * 2;
        q->until_ms = now + delay;
    }
    struct failure f = { .error = error, .final = final };
    bool news = failure_is_news(q, error, final);
    json_t *fields = NULL;
    int r = 0;
    if (news) {
        fields = label_fields(job);
        json_t *h = health_json(q);
        r = !fields || !h ||
                    json_object_set_new(fields, "error", json_string(error)) < 0 ||
                    json_object_set_new(fields, "final", json_boolean(final)) < 0 ||
                    json_object_set_new(fields, "attempts", json_integer(job->attempts)) < 0 ||
                    json_object_set(fields, "reasons", json_object_get(h, "reasons")) < 0 ||
                    json_object_set(fields, "printer_state", h) < 0
                ? -ENOMEM : 0;
        json_decref(h);
        if (r == 0 && cups_job > 0)
            r = json_object_set_new(fields, "job", json_integer(cups_job)) < 0 ? -ENOMEM : 0;
        if (r == 0 && !final)
            r = json_object_set_new(fields, "retry_in_ms", json_integer(delay)) < 0 ? -ENOMEM : 0;
    }
    if (r == 0)
        r = record(sp, job, news ? "label.failed" : NULL, fields, change_failed, &f);
    json_decref(fields);
    if (r < 0) {
        note_db_error(sp, job, "recording a failed label");
        retry_later(sp);
        return;
    }
    if (news) {
        spool_note_t n = { .kind = SPOOL_FAILED, .label = job->id, .receipt = job->receipt_id,
                           .station = job->station, .printer = job->printer,
                           .cups_job = cups_job, .error = error, .final = final,
                           .retry_in_ms = delay };
        note(sp, &n);
    }
    if (!final)
        schedule(sp, now + delay);
}

/* ---- the worker's answers --------------------------------------------------------- */

/* A printer's health changed: keep it, publish printer.state, and try at once when it
 * is ready again (its labels waited for exactly that). */
static void printer_state(spool_t *sp, const printer_event_t *ev)
{
    pq_t *q = pq_get(sp, ev->queue);
    if (!q)
        return;
    char *reasons = strdup(ev->health.reasons), *message = strdup(ev->health.message);
    if (!reasons || !message) {
        free(reasons);
        free(message);
        return;
    }
    bool was_ready = !q->known || q->condition == PRINTER_READY;
    free(q->reasons);
    free(q->message);
    q->reasons = reasons;
    q->message = message;
    q->condition = ev->health.condition;
    q->known = true;

    json_t *fields = health_json(q);
    int r = -ENOMEM;
    if (fields && json_object_set_new(fields, "printer", json_string(q->name)) == 0) {
        db_print_job_t none = { .printer = q->name };
        r = record(sp, &none, "printer.state", fields, NULL, NULL);
    }
    json_decref(fields);
    char *words = msgf("%s%s%s%s%s", printer_condition_name(q->condition),
                       *q->reasons ? ": " : "", q->reasons, *q->message ? " - " : "",
                       q->message);
    spool_note_t n = { .kind = r == 0 ? SPOOL_PRINTER : SPOOL_ERROR, .printer = q->name,
                       .error = r == 0 ? (words ? words : printer_condition_name(q->condition))
                                       : "recording a printer's state failed" };
    note(sp, &n);
    free(words);
    if (q->condition == PRINTER_READY && !was_ready) {
        q->delay_ms = 0;
        q->until_ms = 0;
        spool_kick(sp);
    }
}

static void printer_cb(const printer_event_t *ev, void *data)
{
    spool_t *sp = data;
    db_print_job_t job;
    int64_t id = (int64_t)ev->tag;

    if (ev->kind == PRINTER_EV_STATE) {
        printer_state(sp, ev);
        return;
    }
    pq_t *q = pq_get(sp, ev->queue);
    if (q && q->submitting == id)
        q->submitting = 0;
    if (ev->kind != PRINTER_EV_SUBMITTED)
        untrack(sp, id);

    if (db_print_get(sp->db, id, &job) < 0) {
        db_print_job_t unknown = { .id = id, .printer = (char *)ev->queue };
        note_db_error(sp, &unknown, "print job");
        retry_later(sp);
        return;
    }
    /* A row already final (cancelled by hand meanwhile, say) takes no more answers. */
    if (job.state != DB_PRINT_SUBMITTING && job.state != DB_PRINT_SUBMITTED)
        goto out;

    switch (ev->kind) {
    case PRINTER_EV_SUBMITTED: {
        struct submitted s = { .cups_job = ev->job_id, .uuid = ev->job_uuid };
        if (q)
            q->delay_ms = 0;
        /*
         * Not recorded: the row stays `submitting`, the worker follows the job on, and
         * its outcome is recorded from there; a restart in between finds the job by
         * its name. Nothing is sent again either way.
         */
        if (job.state == DB_PRINT_SUBMITTING &&
            record(sp, &job, NULL, NULL, change_submitted, &s) < 0)
            note_db_error(sp, &job, "recording a submitted label");
        spool_kick(sp);   /* the printer's next label may go now */
        break;
    }
    case PRINTER_EV_COMPLETED: {
        json_t *fields = label_fields(&job);
        int r = -ENOMEM;
        if (fields && json_object_set_new(fields, "job", json_integer(ev->job_id)) == 0 &&
            (!*ev->job_uuid ||
             json_object_set_new(fields, "job_uuid", json_string(ev->job_uuid)) == 0))
            r = record(sp, &job, "label.printed", fields, change_printed, NULL);
        json_decref(fields);
        if (r < 0) {
            /* The row still names the job: the next pump follows or finds it again. */
            note_db_error(sp, &job, "recording a printed label");
            retry_later(sp);
            break;
        }
        if (q) {
            free(q->failed_key);
            q->failed_key = NULL;
        }
        spool_note_t n = { .kind = SPOOL_PRINTED, .label = job.id, .receipt = job.receipt_id,
                           .station = job.station, .printer = job.printer,
                           .cups_job = ev->job_id };
        note(sp, &n);
        break;
    }
    case PRINTER_EV_FAILED:
        failed(sp, &job, ev->job_id, ev->error ? ev->error : "printing failed", !ev->retry,
               ev->lost);
        break;
    case PRINTER_EV_STATE:
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

/* A label on its way to the worker, which renders it (off the loop). */
struct doc {
    label_receipt_t lr;
    label_format_t fmt;
    label_size_t size;
    int dpi;
};

static int doc_render(void *d, uint8_t **out, size_t *len, char **err)
{
    struct doc *doc = d;
    int r = label_render(&doc->lr.label, doc->fmt, doc->size, doc->dpi, out, len);
    if (r < 0)
        *err = msgf("rendering the label: %s", strerror(-r));
    return r;
}

static void doc_free(void *d)
{
    struct doc *doc = d;
    if (!doc)
        return;
    label_receipt_clear(&doc->lr);
    free(doc);
}

/* Back to queued when the worker never got the label (the row said submitting). */
static void hand_off_failed(spool_t *sp, const db_print_job_t *job, int r)
{
    char *why = msgf("handing the label to the printer worker: %s", strerror(-r));
    failed(sp, job, 0, why ? why : "handing the label to the printer worker failed", false,
           false);
    free(why);
}

/*
 * Load a queued row's label, store it as submitting under this attempt's job name,
 * then hand it to the worker. A label that cannot be made from the database is a
 * final failure: retrying would give the same answer.
 */
static void submit(spool_t *sp, pq_t *q, const db_print_job_t *job)
{
    struct doc *doc = calloc(1, sizeof(*doc));
    char *err = NULL;
    int r = doc ? label_receipt_load(sp->db, job->receipt_id, &doc->lr, &err) : -ENOMEM;
    if (r < 0) {
        free(doc);
        bool final = r != -ENOMEM && r != -EBUSY && r != -EIO;
        failed(sp, job, 0, err ? err : "the label cannot be made", final, false);
        free(err);
        return;
    }
    /* A station taken out of the config keeps printing its labels, as 4x6 ZPL. */
    const config_station_t *st = station_cfg(sp, job->station);
    config_label_format_t f = st ? st->label_format : CONFIG_LABEL_ZPL;
    doc->fmt = formats[f].fmt;
    doc->size = st && st->label_size == CONFIG_LABEL_2X1 ? LABEL_2X1 : LABEL_4X6;
    doc->dpi = st ? st->label_dpi : 203;

    int attempt = job->attempts + 1;
    char name[PRINTER_JOB_NAME_MAX];
    printer_job_name(name, job->id, attempt);
    r = txn_begin(sp->txn);
    if (r == 0 && (r = db_print_submitting(sp->db, job->id, attempt, name)) < 0)
        txn_rollback(sp->txn, r);
    else if (r == 0)
        r = txn_commit(sp->txn);
    if (r < 0) {
        doc_free(doc);
        note_db_error(sp, job, "storing a label as submitting");
        retry_later(sp);
        return;
    }
    r = printer_submit_render(sp->printer, (uint64_t)job->id, job->printer, formats[f].mime,
                              name, doc_render, doc, doc_free);
    if (r < 0) {
        db_print_job_t now = *job;
        now.attempts = attempt;
        hand_off_failed(sp, &now, r);
        return;
    }
    q->submitting = job->id;
    track(sp, job->id);
}

struct pump {
    spool_t *sp;
    int64_t now;
    int64_t next;              /* earliest monotonic time something is due, or INT64_MAX */
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

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int copy_due(struct pump *p, const db_print_job_t *job)
{
    db_print_job_t *n = realloc(p->due, (p->ndue + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    p->due = n;
    int oom = 0;
    db_print_job_t *c = &n[p->ndue];
    *c = *job;
    c->station = dup_or_null(job->station, &oom);
    c->printer = dup_or_null(job->printer, &oom);
    c->job_name = dup_or_null(job->job_name, &oom);
    c->job_uuid = dup_or_null(job->job_uuid, &oom);
    c->last_error = NULL;
    if (oom) {
        db_print_job_clear(c);
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

    if (job->state == DB_PRINT_SUBMITTED || job->state == DB_PRINT_SUBMITTING) {
        /* In CUPS (or maybe): followed or looked up once, never sent again blindly. */
        return is_tracked(sp, job->id) ? 0 : copy_due(p, job);
    }
    /* Queue order per printer: only its oldest queued label may go. */
    if (seen_printer(p, job->printer))
        return 0;
    pq_t *q = pq_get(sp, job->printer);
    if (!q)
        return -ENOMEM;
    if (q->submitting)
        return 0;   /* the worker's answer kicks the next pump */
    if (q->until_ms > p->now) {
        if (q->until_ms < p->next)
            p->next = q->until_ms;
        return 0;
    }
    return copy_due(p, job);
}

/* Follow a submitted row, or look up a submitting one, with the worker. */
static void pick_up(spool_t *sp, const db_print_job_t *job, struct pump *p)
{
    int r = job->state == DB_PRINT_SUBMITTED
                ? printer_follow(sp->printer, (uint64_t)job->id, job->printer, job->cups_job,
                                 job->job_uuid, job->job_name)
                : printer_find(sp->printer, (uint64_t)job->id, job->printer, job->job_name);
    if (r == 0) {
        track(sp, job->id);
        return;
    }
    if (r == -EINVAL) {
        /* A row the worker cannot take (a queue name CUPS cannot have): it never will. */
        failed(sp, job, job->cups_job, "the label's printer or job name is not valid for CUPS",
               true, false);
        return;
    }
    /* -EAGAIN (the worker is full) or -ENOMEM: ask again on a later pump. */
    int64_t later = p->now + sp->cfg->print_retry_ms;
    if (later < p->next)
        p->next = later;
}

static void pump(spool_t *sp)
{
    struct pump p = { .sp = sp, .now = loop_now_ms(), .next = INT64_MAX };
    int r = db_print_foreach_unfinished(sp->db, pump_row, &p);
    if (r < 0 || p.oom) {
        db_print_job_t none = { .printer = "" };
        note_db_error(sp, &none, "reading the print queue");
        if (p.now + sp->cfg->print_retry_ms < p.next)
            p.next = p.now + sp->cfg->print_retry_ms;
    }
    for (size_t i = 0; i < p.ndue; i++) {
        db_print_job_t *job = &p.due[i];
        if (job->state == DB_PRINT_QUEUED) {
            pq_t *q = pq_get(sp, job->printer);
            if (q)
                submit(sp, q, job);
        } else {
            pick_up(sp, job, &p);
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

/* Pump at monotonic time at_ms (or sooner, when a pump is already due before). */
static void schedule(spool_t *sp, int64_t at_ms)
{
    if (sp->timer && sp->timer_at <= at_ms)
        return;
    if (sp->timer)
        (void)loop_del_timer(sp->loop, sp->timer);
    int64_t delay = at_ms - loop_now_ms();
    sp->timer = loop_add_timer(sp->loop, delay > 0 ? delay : 0, timer_cb, sp);
    sp->timer_at = at_ms;
}

void spool_kick(spool_t *sp)
{
    schedule(sp, 0);
}

/* ---- life ----------------------------------------------------------------------- */

spool_t *spool_new(loop_t *loop, db_t *db, txn_t *txn, const config_t *cfg,
                   spool_note_fn fn, void *data, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    spool_t *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        msgf_set(errmsg, "print spooler: out of memory");
        return NULL;
    }
    sp->loop = loop;
    sp->db = db;
    sp->txn = txn;
    sp->cfg = cfg;
    sp->fn = fn;
    sp->data = data;
    if (!(sp->printer = printer_new(loop, printer_cb, sp))) {
        msgf_set(errmsg, "print spooler: starting the printer worker: %s", strerror(errno));
        free(sp);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nstations; i++) {
        const char *name = cfg->stations[i].printer;
        int r = name ? printer_watch(sp->printer, name) : 0;
        if (r < 0) {
            msgf_set(errmsg, "print spooler: watching printer %s: %s", name, strerror(-r));
            spool_destroy(&sp);
            return NULL;
        }
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
    for (size_t i = 0; i < sp->npqs; i++) {
        free(sp->pqs[i].name);
        free(sp->pqs[i].reasons);
        free(sp->pqs[i].message);
        free(sp->pqs[i].failed_key);
    }
    free(sp->pqs);
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
        rc = txn_begin(sp->txn);
        if (rc == 0 && (rc = db_print_enqueue(sp->db, receipt, r.station, st->printer,
                                              DB_PRINT_REPRINT, loop_wall_ms(), label)) < 0)
            txn_rollback(sp->txn, rc);
        else if (rc == 0)
            rc = txn_commit(sp->txn);
        if (rc < 0)
            msgf_set(errmsg, "queueing the label: %s", db_errmsg(sp->db));
        else
            spool_kick(sp);
    }
    db_receipt_clear(&r);
    return rc;
}

int spool_cancel(spool_t *sp, int64_t label, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    db_print_job_t job;
    int rc = db_print_get(sp->db, label, &job);
    if (rc < 0) {
        msgf_set(errmsg, rc == -ENOENT ? "no label %lld" : "label %lld: %s", (long long)label,
                 db_errmsg(sp->db));
        return rc;
    }
    json_t *fields = label_fields(&job);
    if (fields && json_object_set_new(fields, "attempts", json_integer(job.attempts)) < 0) {
        json_decref(fields);
        fields = NULL;
    }
    rc = fields ? record(sp, &job, "label.cancelled", fields, change_cancelled,
                         "cancelled with rmactl labels cancel")
                : -ENOMEM;
    json_decref(fields);
    if (rc < 0) {
        msgf_set(errmsg, "%s", rc == -ENOMEM ? "out of memory" : db_errmsg(sp->db));
    } else {
        spool_note_t n = { .kind = SPOOL_CANCELLED, .label = job.id, .receipt = job.receipt_id,
                           .station = job.station, .printer = job.printer };
        note(sp, &n);
        spool_kick(sp);   /* the printer's next label, if this one was holding it up */
    }
    db_print_job_clear(&job);
    return rc;
}

static int list_row(const db_print_job_t *job, void *data)
{
    char created[EVENT_TIME_STRLEN], done[EVENT_TIME_STRLEN];
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:i}", "label", (json_int_t)job->id,
                          "receipt", (json_int_t)job->receipt_id, "station", job->station,
                          "printer", job->printer, "why", db_print_why_name(job->why),
                          "state", db_print_state_name(job->state), "attempts",
                          job->attempts);
    if (!o)
        return -ENOMEM;
    int bad = 0;
    if (job->cups_job > 0)
        bad |= json_object_set_new(o, "job", json_integer(job->cups_job));
    if (job->last_error)
        bad |= json_object_set_new(o, "error", json_string(job->last_error));
    if (event_time_format(job->created_at, created) == 0)
        bad |= json_object_set_new(o, "created", json_string(created));
    if (job->done_at != DB_TIME_NONE && event_time_format(job->done_at, done) == 0)
        bad |= json_object_set_new(o, "done", json_string(done));
    if (bad || json_array_append_new(data, o) < 0)
        return -ENOMEM;
    return 0;
}

json_t *spool_list(spool_t *sp, db_print_list_t which, const char *station, unsigned limit,
                   char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    json_t *list = json_array();
    if (!list) {
        msgf_set(errmsg, "out of memory");
        return NULL;
    }
    int rc = db_print_foreach(sp->db, which, station, limit, list_row, list);
    if (rc < 0) {
        msgf_set(errmsg, "%s", rc == -ENOMEM ? "out of memory" : db_errmsg(sp->db));
        json_decref(list);
        return NULL;
    }
    return list;
}

static int count_row(const db_print_job_t *job, void *data)
{
    spool_status_t *s = data;
    /* "At the printer" is what CUPS surely has; one being handed over still waits. */
    if (job->state == DB_PRINT_SUBMITTED)
        s->submitted++;
    else
        s->queued++;
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

json_t *spool_printer(spool_t *sp, const char *name)
{
    for (size_t i = 0; i < sp->npqs; i++)
        if (strcmp(sp->pqs[i].name, name) == 0)
            return health_json(&sp->pqs[i]);
    return health_json(NULL);
}
