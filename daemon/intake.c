/* Group commit of the stations' reads (daemon/intake.h). */
#include "daemon/intake.h"

#include <errno.h>
#include <stdlib.h>

struct intake;

/* A read staged in the open batch: told its fate by the txn's hook. */
typedef struct {
    struct intake *in;
    size_t station;
    uint64_t seq;
} slot_t;

struct intake {
    loop_t *loop;
    txn_t *t;
    station_t *const *stations;
    scanq_t **queues;
    size_t n;
    size_t next;                /* the station a batch starts with: each goes first in turn */
    size_t waiting;
    intake_done_fn done;
    intake_busy_fn busy;
    intake_hold_fn hold;
    bool *held;                 /* per station: its scanners were asked to hold */
    void *data;
    uint64_t timer;
    bool db_busy;
    int64_t busy_since;
    slot_t slots[INTAKE_BATCH_MAX];
    unsigned max_reads;         /* a batch's caps (intake_set_limits) */
    int64_t max_ms;
    intake_stats_t stats;
    unsigned batch_reads;       /* reads the open batch stored */
};

intake_t *intake_new(loop_t *loop, txn_t *t, station_t *const *stations, size_t n,
                     intake_done_fn done, intake_busy_fn busy, intake_hold_fn hold,
                     void *data)
{
    if (!loop || !t || (!stations && n) || !done)
        return NULL;
    intake_t *in = calloc(1, sizeof(*in));
    scanq_t **queues = calloc(n ? n : 1, sizeof(*queues));
    bool *held = calloc(n ? n : 1, sizeof(*held));
    if (!in || !queues || !held) {
        free(in);
        free(queues);
        free(held);
        return NULL;
    }
    *in = (intake_t){ .loop = loop, .t = t, .stations = stations, .queues = queues, .n = n,
                      .done = done, .busy = busy, .hold = hold, .held = held, .data = data,
                      .max_reads = INTAKE_BATCH_MAX, .max_ms = INTAKE_BATCH_MS };
    for (size_t i = 0; i < n; i++) {
        if (!(in->queues[i] = scanq_new())) {
            intake_destroy(&in);
            return NULL;
        }
    }
    return in;
}

void intake_destroy(intake_t **inp)
{
    if (!inp || !*inp)
        return;
    intake_t *in = *inp;
    if (in->timer)
        (void)loop_del_timer(in->loop, in->timer);
    for (size_t i = 0; i < in->n; i++)
        scanq_destroy(&in->queues[i]);
    free(in->queues);
    free(in->held);
    free(in);
    *inp = NULL;
}

int intake_set_limits(intake_t *in, unsigned max_reads, int64_t max_ms)
{
    if (!in || max_reads == 0 || max_reads > INTAKE_BATCH_MAX || max_ms < 0)
        return -EINVAL;
    in->max_reads = max_reads;
    in->max_ms = max_ms;
    return 0;
}

size_t intake_waiting(const intake_t *in)
{
    return in ? in->waiting : 0;
}

void intake_stats(const intake_t *in, intake_stats_t *out)
{
    *out = in->stats;
}

/* The head read of station i has ended (stored, or refused for good): tell, and drop it. */
static void finish(intake_t *in, size_t i, int rc, const station_outcome_t *out, uint64_t seq)
{
    in->done(i, scanq_head(in->queues[i]), rc, out, seq, in->data);
    scanq_pop(in->queues[i]);
    in->waiting--;
    if (in->held[i] && scanq_len(in->queues[i]) <= INTAKE_RESUME_AT) {
        in->held[i] = false;
        if (in->hold)
            in->hold(i, false, in->data);
    }
}

/* The txn's hook for a staged read: after the COMMIT (rc 0) or once it was undone. */
static void staged_end(int rc, void *data)
{
    slot_t *s = data;
    intake_t *in = s->in;
    station_outcome_t out;
    station_end_staged(in->stations[s->station], rc, &out);
    if (rc == 0) {
        in->batch_reads++;
        finish(in, s->station, 0, &out, s->seq);
    } else if (rc != -EBUSY) {
        finish(in, s->station, rc, NULL, 0);
    }
    /* -EBUSY: not stored, still at the head of its queue; tried again. */
}

/* Stage the head read of station i in its own savepoint. Returns 0, or the error that ended the batch. */
static int stage_one(intake_t *in, size_t i, slot_t *slot)
{
    const scanq_item_t *it = scanq_head(in->queues[i]);
    station_t *st = in->stations[i];
    station_outcome_t out;
    int r = txn_savepoint(in->t);
    if (r < 0)
        return r;
    int64_t now = loop_wall_ms();
    r = it->rejected ? station_stage_rejected(st, it->scanner_id, it->raw, it->raw_len, it->reason,
                                              now, txn_outbox(in->t))
                     : station_stage_scan(st, &it->scan, now, txn_outbox(in->t), &out);
    if (r == 1) {
        /* A double read stores nothing: answered now, whatever the batch's fate. */
        r = txn_release(in->t);
        finish(in, i, 0, &out, 0);
        return r;
    }
    if (r == 0) {
        *slot = (slot_t){ .in = in, .station = i, .seq = txn_last_seq(in->t) };
        if ((r = txn_on_end(in->t, staged_end, slot)) < 0) {
            station_end_staged(st, r, NULL);
            int end = txn_rollback_to(in->t, r);
            finish(in, i, r, NULL, 0);
            return end;
        }
        return txn_release(in->t);   /* on failure the hook has been told */
    }
    /* This read alone failed: its writes are undone, it is refused, the batch goes on. */
    int end = txn_rollback_to(in->t, r);
    finish(in, i, r, NULL, 0);
    return end;
}

/* Every station's head read refused with rc (the database cannot take a batch at all). */
static void refuse_heads(intake_t *in, int rc)
{
    for (size_t i = 0; i < in->n; i++)
        if (scanq_len(in->queues[i]) > 0)
            finish(in, i, rc, NULL, 0);
}

/* One batch: the ready reads of all stations, one transaction. */
static int64_t batch(loop_t *loop, uint64_t id, void *data)
{
    intake_t *in = data;
    (void)loop;
    (void)id;
    int r = txn_begin(in->t);
    if (r == -EBUSY) {
        if (!in->db_busy && in->busy)
            in->busy(true, 0, in->data);
        if (!in->db_busy) {
            in->db_busy = true;
            in->busy_since = loop_now_ms();
        }
        return SCANQ_RETRY_MS;
    }
    if (r < 0) {
        refuse_heads(in, r);
        return in->waiting ? 0 : (in->timer = 0, -1);
    }
    int64_t start = loop_now_ms();
    size_t staged = 0;
    in->batch_reads = 0;
    for (size_t k = 0; k < in->n && staged < in->max_reads; k++) {
        size_t i = (in->next + k) % in->n;
        if (scanq_len(in->queues[i]) == 0)
            continue;
        if (staged > 0 && loop_now_ms() - start >= in->max_ms)
            break;
        if ((r = stage_one(in, i, &in->slots[staged])) < 0)
            break;                /* the transaction is gone: every hook has been told */
        if (station_has_staged(in->stations[i]))
            staged++;
    }
    in->next = in->n ? (in->next + 1) % in->n : 0;
    if (r >= 0)
        r = txn_commit(in->t);   /* the hooks answer every staged read */
    else
        txn_rollback(in->t, r);  /* what is left of it (a savepoint that could not open) */
    if (r == 0 && in->batch_reads) {
        in->stats.batches++;
        in->stats.reads += in->batch_reads;
        if (in->batch_reads > in->stats.largest)
            in->stats.largest = in->batch_reads;
    }
    if (r == -EBUSY)
        return SCANQ_RETRY_MS;
    if (in->db_busy) {
        in->db_busy = false;
        if (in->busy)
            in->busy(false, loop_now_ms() - in->busy_since, in->data);
    }
    if (in->waiting)
        return 0;                 /* the rest in the next turn, after the fds are served */
    in->timer = 0;
    return -1;
}

int intake_push(intake_t *in, size_t i, const scan_t *scan, const char *scanner_id,
                const uint8_t *raw, size_t raw_len, const char *reason, void *owner)
{
    if (!in || i >= in->n)
        return -EINVAL;
    int r = scanq_push(in->queues[i], scan, scanner_id, raw, raw_len, reason, owner);
    if (r < 0)
        return r;
    in->waiting++;
    if (!in->held[i] && scanq_len(in->queues[i]) >= INTAKE_HOLD_AT) {
        in->held[i] = true;
        if (in->hold)
            in->hold(i, true, in->data);
    }
    if (!in->timer && !(in->timer = loop_add_timer(in->loop, 0, batch, in))) {
        /* No timer, no batch: the read is not taken. */
        in->waiting--;
        scanq_pop_last(in->queues[i]);
        return -ENOMEM;
    }
    return 0;
}
