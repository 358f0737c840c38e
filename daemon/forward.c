/*
 * The JetStream forwarder (forward.h). One thread per forwarder runs a cycle:
 *
 *     connect (every URL of [forward] nats; libnats's own reconnection is off)
 *     check the stream (exists, takes our subjects, acks, deduplicates long enough)
 *     resume point: the mark + 1, or after the stream's last Rmad-Seq of the site
 *                   when the mark is older than half the duplicate window
 *     batches: read up to max_inflight events from the outbox, publish them all
 *              asynchronously, wait for their acks, move the mark over the
 *              acknowledged run; a missing ack or a publish error ends the cycle
 *     on any failure: drop the connection, wait (doubling), start again
 *
 * Dropping the connection on every failure is what keeps the order: nothing of a
 * failed batch is sent on the next connection except by re-reading the outbox from
 * the mark, and whatever of it the stream already has it drops by Nats-Msg-Id.
 *
 * Locking: f->mu guards the status, the committed seq, the stop flag and the notes
 * queue, shared with the loop's thread; the thread's SQLite connection, the NATS
 * objects and the batch are the thread's alone (the ack handler runs on a libnats
 * thread and touches only the batch, under f->batch_mu).
 */
#include "daemon/forward.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <regex.h>

#include "db/db.h"

/* One event of the batch in flight. */
typedef struct {
    uint64_t seq;
    char *topic;
    char *body;
    size_t len;
    bool acked;
    bool duplicate;
} fw_event_t;

typedef struct fw_note {
    forward_note_kind_t kind;
    char *text;
    uint64_t seq;
    struct fw_note *next;
} fw_note_t;

struct forward {
    const config_forward_t *cfg;
    loop_t *loop;
    forward_note_fn fn;
    void *data;
    int pipe_rd, pipe_wr;       /* the thread wakes the loop for its notes */
    pthread_t thread;
    bool started;
    pthread_t feed_thread;      /* the RMA feed (rma_feed = yes), its own connections */
    bool feed_started;
    db_t *feed_db;              /* the feed thread's own */
    regex_t feed_re;            /* [daemon] rma_pattern, compiled */
    bool feed_re_ok;
    char *feed_subject;         /* "<prefix>.<site>.rma.upsert", fed or not: the last-seq
                                 * lookup skips what others publish there */

    pthread_mutex_t mu;
    pthread_cond_t cond;        /* committed moved, or stop */
    bool stop;
    forward_status_t st;
    fw_note_t *notes, **notes_tail;
    char last_error[256];       /* the last error noted: the same one is noted once */

    /* The thread's own. */
    db_t *db;
    char *filter;               /* "<prefix>.<site>.>" */
    uint64_t mark;
    int64_t mark_ms;
    int64_t dup_window_ms;

    pthread_mutex_t batch_mu;   /* with the ack handler */
    fw_event_t *batch;
    size_t nbatch;
    size_t batch_cap;
    bool batch_failed;
    char batch_error[200];
};

const char *forward_state_name(forward_state_t s)
{
    switch (s) {
    case FORWARD_CONNECTING: return "connecting";
    case FORWARD_FORWARDING: return "forwarding";
    case FORWARD_DISCONNECTED: return "disconnected";
    case FORWARD_STREAM_ERROR: return "stream error";
    }
    return "?";
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- notes to the loop ---------------------------------------------------------- */

/* Queue a note and wake the loop (the pipe is non-blocking: a full pipe already woke it). */
static void note(forward_t *f, forward_note_kind_t kind, const char *text, uint64_t seq)
{
    fw_note_t *n = calloc(1, sizeof(*n));
    if (!n || !(n->text = strdup(text ? text : ""))) {
        free(n);
        return;   /* out of memory: the status still tells */
    }
    n->kind = kind;
    n->seq = seq;
    pthread_mutex_lock(&f->mu);
    *f->notes_tail = n;
    f->notes_tail = &n->next;
    pthread_mutex_unlock(&f->mu);
    char b = 1;
    (void)!write(f->pipe_wr, &b, 1);
}

static void pipe_cb(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    forward_t *f = data;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&f->mu);
    fw_note_t *n = f->notes;
    f->notes = NULL;
    f->notes_tail = &f->notes;
    pthread_mutex_unlock(&f->mu);
    while (n) {
        fw_note_t *next = n->next;
        forward_note_t pub = { .kind = n->kind, .text = n->text, .seq = n->seq };
        if (f->fn)
            f->fn(&pub, f->data);
        free(n->text);
        free(n);
        n = next;
    }
}

/* The state and its problem; a problem is noted once until another one replaces it. */
static void set_state(forward_t *f, forward_state_t s, const char *server, const char *error,
                      forward_note_kind_t kind)
{
    bool fresh = false;
    pthread_mutex_lock(&f->mu);
    f->st.state = s;
    if (server)
        snprintf(f->st.server, sizeof(f->st.server), "%s", server);
    if (error) {
        snprintf(f->st.error, sizeof(f->st.error), "%s", error);
        fresh = strcmp(f->last_error, f->st.error) != 0;
        snprintf(f->last_error, sizeof(f->last_error), "%s", f->st.error);
    }
    pthread_mutex_unlock(&f->mu);
    if (error && fresh)
        note(f, kind, error, 0);
}

/* Sleep up to ms, or until stop. Returns true when stopping. */
static bool wait_or_stop(forward_t *f, int64_t ms, uint64_t wake_above)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->mu);
    while (!f->stop && f->st.committed <= wake_above &&
           pthread_cond_timedwait(&f->cond, &f->mu, &until) == 0)
        ;
    bool stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    return stop;
}

static bool stopping(forward_t *f)
{
    pthread_mutex_lock(&f->mu);
    bool s = f->stop;
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* ---- NATS ----------------------------------------------------------------------- */

/* "text: libnats's last error" into buf. */
static void nats_err(char *buf, size_t cap, const char *what, natsStatus s, jsErrCode jerr)
{
    const char *last = nats_GetLastError(NULL);
    if (jerr)
        snprintf(buf, cap, "%s: %s (JetStream error %d)", what,
                 last && *last ? last : natsStatus_GetText(s), (int)jerr);
    else
        snprintf(buf, cap, "%s: %s", what, last && *last ? last : natsStatus_GetText(s));
}

/* Options for one connection attempt: every URL, TLS and credentials of [forward]. */
static natsStatus make_options(const config_forward_t *cfg, natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, (const char **)cfg->servers, (int)cfg->nservers);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "rmad");
    /* The forwarder reconnects itself, so that nothing buffered crosses connections. */
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK && cfg->tls)
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && cfg->tls_ca)
        s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca);
    if (s == NATS_OK && cfg->tls_cert)
        s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert, cfg->tls_key);
    if (s == NATS_OK && cfg->creds)
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->creds, NULL);
    if (s == NATS_OK && cfg->nkey)
        s = natsOptions_SetNKeyFromSeed(o, cfg->nkey, cfg->nkey_seed);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

/* NATS subject matching: does pattern (with * and >) cover subject? */
static bool subject_matches(const char *pattern, const char *subject)
{
    while (*pattern && *subject) {
        const char *pe = strchr(pattern, '.'), *se = strchr(subject, '.');
        size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sl = se ? (size_t)(se - subject) : strlen(subject);
        if (pl == 1 && pattern[0] == '>')
            return true;
        if (!(pl == 1 && pattern[0] == '*') && (pl != sl || memcmp(pattern, subject, pl) != 0))
            return false;
        if (!pe || !se)
            return !pe && !se;
        pattern = pe + 1;
        subject = se + 1;
    }
    return false;
}

/*
 * Is the stream fit for forwarding? Every event subject of the site must be stored,
 * acks on, and duplicates tracked long enough to absorb a re-sent tail. Returns 0 and
 * sets *dup_ms, or -EINVAL with why in buf.
 */
static int check_stream(const config_forward_t *cfg, const jsStreamConfig *sc, int64_t *dup_ms,
                        char *buf, size_t cap)
{
    char probe[256];
    snprintf(probe, sizeof(probe), "%s.%s.receipt.opened", cfg->subject_prefix, cfg->site);
    bool covered = false;
    for (int i = 0; i < sc->SubjectsLen && !covered; i++)
        covered = subject_matches(sc->Subjects[i], probe);
    if (!covered) {
        snprintf(buf, cap, "stream %s does not take the subjects %s.%s.> (its subjects: %s%s)",
                 cfg->stream, cfg->subject_prefix, cfg->site,
                 sc->SubjectsLen ? sc->Subjects[0] : "none", sc->SubjectsLen > 1 ? ", ..." : "");
        return -EINVAL;
    }
    if (sc->NoAck) {
        snprintf(buf, cap, "stream %s does not acknowledge publishes (no_ack): nothing "
                 "would be known stored", cfg->stream);
        return -EINVAL;
    }
    int64_t ms = sc->Duplicates / 1000000;
    if (ms < FORWARD_MIN_DUP_WINDOW_MS) {
        snprintf(buf, cap, "stream %s keeps duplicates %lld ms, less than %d ms: a re-sent "
                 "tail could be stored twice", cfg->stream, (long long)ms,
                 FORWARD_MIN_DUP_WINDOW_MS);
        return -EINVAL;
    }
    *dup_ms = ms;
    return 0;
}

/* The Rmad-Seq of the last message on subject (0 when none), or -EIO / -EINVAL. */
static int last_on_subject(forward_t *f, jsCtx *js, const char *subject, uint64_t *out,
                           bool *foreign, char *buf, size_t cap)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    *foreign = false;
    natsStatus s = js_GetLastMsg(&m, js, f->cfg->stream, subject, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        *out = 0;
        return 0;
    }
    if (s != NATS_OK) {
        nats_err(buf, cap, "last message of the site", s, jerr);
        return -EIO;
    }
    const char *v = NULL;
    int rc = 0;
    if (strcmp(natsMsg_GetSubject(m), f->feed_subject) == 0) {
        *foreign = true;   /* an RMA upsert for this site, not one of its events */
    } else if (natsMsgHeader_Get(m, "Rmad-Seq", &v) != NATS_OK || !v) {
        snprintf(buf, cap, "the site's last message in stream %s (%s) has no Rmad-Seq header: "
                 "is another writer using %s?", f->cfg->stream, natsMsg_GetSubject(m), f->filter);
        rc = -EINVAL;
    } else {
        *out = strtoull(v, NULL, 10);
    }
    natsMsg_Destroy(m);
    return rc;
}

/*
 * The site's last Rmad-Seq in the stream (0 when it holds none of the site's events).
 * The site's subjects also take the RMA feed's upserts (<prefix>.<site>.rma.upsert,
 * published by others, without Rmad-Seq): when the last message of the site is one,
 * the stream's list of the site's subjects gives the event subjects, and the highest
 * last Rmad-Seq among them is the answer. Returns 0, or -EIO / -EINVAL with buf set.
 */
static int stream_last_seq(forward_t *f, jsCtx *js, uint64_t *out, char *buf, size_t cap)
{
    bool foreign = false;
    int rc = last_on_subject(f, js, f->filter, out, &foreign, buf, cap);
    if (rc < 0 || !foreign)
        return rc;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = f->filter;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, f->cfg->stream, &o, &jerr);
    if (s != NATS_OK) {
        nats_err(buf, cap, "the site's subjects in the stream", s, jerr);
        return -EIO;
    }
    *out = 0;
    const jsStreamStateSubjects *subs = si->State.Subjects;
    for (int i = 0; rc == 0 && subs && i < subs->Count; i++) {
        uint64_t seq = 0;
        if (strcmp(subs->List[i].Subject, f->feed_subject) == 0)
            continue;
        rc = last_on_subject(f, js, subs->List[i].Subject, &seq, &foreign, buf, cap);
        if (rc == 0 && seq > *out)
            *out = seq;
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* ---- the batch ------------------------------------------------------------------ */

static void batch_clear(forward_t *f)
{
    for (size_t i = 0; i < f->nbatch; i++) {
        free(f->batch[i].topic);
        free(f->batch[i].body);
    }
    f->nbatch = 0;
    f->batch_failed = false;
    f->batch_error[0] = '\0';
}

static int collect(const db_event_t *ev, void *data)
{
    forward_t *f = data;
    fw_event_t *e = &f->batch[f->nbatch];
    memset(e, 0, sizeof(*e));
    e->seq = ev->seq;
    e->len = ev->body_len;
    if (!(e->topic = strdup(ev->topic)) || !(e->body = malloc(ev->body_len + 1))) {
        free(e->topic);
        return -ENOMEM;
    }
    memcpy(e->body, ev->body, ev->body_len);
    e->body[ev->body_len] = '\0';
    f->nbatch++;
    return 0;
}

/* libnats's thread: one ack (pa) or failure (pae) of a message of the batch. */
static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    forward_t *f = closure;
    const char *v = NULL;
    uint64_t seq = natsMsgHeader_Get(msg, "Rmad-Seq", &v) == NATS_OK && v ? strtoull(v, NULL, 10) : 0;
    pthread_mutex_lock(&f->batch_mu);
    if (f->nbatch && seq >= f->batch[0].seq && seq - f->batch[0].seq < f->nbatch) {
        fw_event_t *e = &f->batch[seq - f->batch[0].seq];
        if (pa) {
            e->acked = true;
            e->duplicate = pa->Duplicate;
        } else if (!f->batch_failed) {
            f->batch_failed = true;
            snprintf(f->batch_error, sizeof(f->batch_error), "seq %" PRIu64 " not stored: %s",
                     seq, pae && pae->ErrText ? pae->ErrText
                          : natsStatus_GetText(pae ? pae->Err : NATS_ERR));
        }
    }
    pthread_mutex_unlock(&f->batch_mu);
    natsMsg_Destroy(msg);
}

/* Publish one event with its headers. */
static natsStatus publish_event(forward_t *f, jsCtx *js, const fw_event_t *e)
{
    char subj[512], id[128], seq[24];
    snprintf(subj, sizeof(subj), "%s.%s.%s", f->cfg->subject_prefix, f->cfg->site, e->topic);
    snprintf(id, sizeof(id), "%s:%" PRIu64, f->cfg->site, e->seq);
    snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subj, NULL, e->body, (int)e->len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Rmad-Seq", seq);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Rmad-Site", f->cfg->site);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    po.ExpectStream = f->cfg->stream;
    if (s == NATS_OK)
        s = js_PublishMsgAsync(js, &m, &po);
    natsMsg_Destroy(m);   /* NULL once the library took it */
    return s;
}

/* Move the durable mark; a busy database only delays it (the mark lags, nothing else). */
static void save_mark(forward_t *f, uint64_t seq)
{
    if (seq <= f->mark)
        return;
    int64_t now = wall_ms();
    if (db_sink_mark_set(f->db, FORWARD_SINK, seq, now) == 0) {
        f->mark = seq;
        f->mark_ms = now;
    }
    pthread_mutex_lock(&f->mu);
    f->st.forwarded = seq;
    pthread_mutex_unlock(&f->mu);
}

/*
 * Publish one batch from `next` and wait for its acks. Returns 1 when it forwarded
 * something, 0 when there was nothing to send, or a negative errno with buf set when
 * the connection must be dropped.
 */
static int forward_batch(forward_t *f, natsConnection *nc, jsCtx *js, uint64_t *next, char *buf,
                         size_t cap)
{
    batch_clear(f);
    int rc = db_outbox_foreach(f->db, *next, f->cfg->max_inflight, collect, f);
    if (rc < 0) {
        snprintf(buf, cap, "reading events from %" PRIu64 ": %s", *next, db_errmsg(f->db));
        batch_clear(f);
        return 0;   /* the database, not NATS: try again on the next wake-up */
    }
    if (f->nbatch == 0)
        return 0;
    if (f->batch[0].seq != *next) {
        snprintf(buf, cap, "event %" PRIu64 " is missing from the outbox", *next);
        batch_clear(f);
        return -EIO;
    }
    size_t sent = 0;
    natsStatus s = NATS_OK;
    for (; sent < f->nbatch && s == NATS_OK; sent++)
        s = publish_event(f, js, &f->batch[sent]);
    if (s != NATS_OK)
        nats_err(buf, cap, "publish", s, 0);
    /* The acks, in slices: a dead connection or a stop ends the wait early. */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 250;
    natsStatus cs = NATS_TIMEOUT;
    for (int waited = 0; waited < FORWARD_BATCH_WAIT_MS && cs == NATS_TIMEOUT; waited += 250) {
        cs = js_PublishAsyncComplete(js, &po);
        if (cs == NATS_TIMEOUT && (stopping(f) || natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED))
            break;
    }
    if (cs != NATS_OK) {
        natsMsgList pending = { 0 };
        if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        if (s == NATS_OK)
            snprintf(buf, cap, natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED
                                   ? "no ack from the stream within the wait"
                                   : "connection lost with publishes awaiting their ack");
    }
    pthread_mutex_lock(&f->batch_mu);
    size_t run = 0;
    uint64_t dups = 0;
    while (run < f->nbatch && f->batch[run].acked)
        dups += f->batch[run++].duplicate;
    bool failed = f->batch_failed || s != NATS_OK || cs != NATS_OK || run < f->nbatch;
    if (f->batch_failed && s == NATS_OK)
        snprintf(buf, cap, "%s", f->batch_error);
    uint64_t last = run ? f->batch[run - 1].seq : 0;
    pthread_mutex_unlock(&f->batch_mu);

    pthread_mutex_lock(&f->mu);
    f->st.published += sent;
    f->st.duplicates += dups;
    pthread_mutex_unlock(&f->mu);
    if (run) {
        save_mark(f, last);
        *next = last + 1;
    }
    pthread_mutex_lock(&f->batch_mu);
    batch_clear(f);
    pthread_mutex_unlock(&f->batch_mu);
    if (failed) {
        if (!*buf)
            snprintf(buf, cap, "a publish was not acknowledged");
        return -EIO;
    }
    return 1;
}

/*
 * Where to resume: after the mark, unless the mark is so old that the stream may no
 * longer recognise the tail as duplicates; then after the site's last Rmad-Seq there.
 */
static int resume_point(forward_t *f, jsCtx *js, uint64_t *next, char *buf, size_t cap)
{
    uint64_t stored = 0;
    if (db_outbox_last_seq(f->db, &stored) == 0 && f->mark > stored) {
        /* A database older than its mark (restored from a backup): its next events
         * would reuse seqs the stream already has under this site. */
        snprintf(buf, cap, "the forward mark (seq %" PRIu64 ") is beyond the last event "
                 "stored (%" PRIu64 "): a restored or replaced database needs a new site name",
                 f->mark, stored);
        return -EINVAL;
    }
    *next = f->mark + 1;
    if (wall_ms() - f->mark_ms < f->dup_window_ms / 2)
        return 0;
    uint64_t last = 0;
    int rc = stream_last_seq(f, js, &last, buf, cap);
    if (rc < 0)
        return rc;
    if (last > f->mark) {
        if (last > stored) {
            snprintf(buf, cap, "the stream holds seq %" PRIu64 " of site %s, but this database "
                     "ends at %" PRIu64 ": is the site name used by another rmad?",
                     last, f->cfg->site, stored);
            return -EINVAL;
        }
        note(f, FORWARD_NOTE_SKIPPED, f->cfg->stream, last);
        save_mark(f, last);
        *next = last + 1;
    }
    return 0;
}

/* One connection's life. Returns when it failed (buf says why) or on stop. */
static void run_connection(forward_t *f, natsConnection *nc, char *buf, size_t cap)
{
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = f->cfg->max_inflight;
    jo.PublishAsync.AckHandler = ack_handler;
    jo.PublishAsync.AckHandlerClosure = f;
    natsStatus s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        nats_err(buf, cap, "JetStream", s, 0);
        return;
    }
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_GetStreamInfo(&si, js, f->cfg->stream, NULL, &jerr);
    int rc;
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        snprintf(buf, cap, "stream %s does not exist: create it with rmactl forward init",
                 f->cfg->stream);
        set_state(f, FORWARD_STREAM_ERROR, NULL, buf, FORWARD_NOTE_ERROR);
    } else if (s != NATS_OK) {
        nats_err(buf, cap, "stream info", s, jerr);
    } else if ((rc = check_stream(f->cfg, si->Config, &f->dup_window_ms, buf, cap)) < 0) {
        set_state(f, FORWARD_STREAM_ERROR, NULL, buf, FORWARD_NOTE_ERROR);
    } else {
        uint64_t next = 0;
        char url[128] = "";
        (void)natsConnection_GetConnectedUrl(nc, url, sizeof(url));
        if ((rc = resume_point(f, js, &next, buf, cap)) == -EINVAL) {
            set_state(f, FORWARD_STREAM_ERROR, NULL, buf, FORWARD_NOTE_ERROR);
        } else if (rc == 0) {
            pthread_mutex_lock(&f->mu);
            f->st.state = FORWARD_FORWARDING;
            snprintf(f->st.server, sizeof(f->st.server), "%s", url);
            f->st.error[0] = '\0';
            f->last_error[0] = '\0';
            pthread_mutex_unlock(&f->mu);
            note(f, FORWARD_NOTE_CONNECTED, url, next - 1);
            while (!stopping(f)) {
                if (natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
                    snprintf(buf, cap, "connection to %s lost", url);
                    break;
                }
                rc = forward_batch(f, nc, js, &next, buf, cap);
                if (rc < 0)
                    break;
                /* Nothing new: sleep until a commit (or a second, to notice a dead link). */
                if (rc == 0 && wait_or_stop(f, 1000, next - 1))
                    break;
            }
        }
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
}

static void *thread_main(void *arg)
{
    forward_t *f = arg;
    int64_t delay = FORWARD_RETRY_MIN_MS;
    bool was_up = false;
    while (!stopping(f)) {
        char why[256] = "";
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        natsStatus s = make_options(f->cfg, &o);
        if (s == NATS_OK)
            s = natsConnection_Connect(&nc, o);
        if (s != NATS_OK) {
            nats_err(why, sizeof(why), "connect", s, 0);
            set_state(f, was_up ? FORWARD_DISCONNECTED : FORWARD_CONNECTING, "", why,
                      FORWARD_NOTE_DISCONNECTED);
        } else {
            run_connection(f, nc, why, sizeof(why));
            pthread_mutex_lock(&f->mu);
            bool forwarding = f->st.state == FORWARD_FORWARDING;
            pthread_mutex_unlock(&f->mu);
            if (forwarding) {
                was_up = true;
                delay = FORWARD_RETRY_MIN_MS;
                if (!stopping(f))
                    set_state(f, FORWARD_DISCONNECTED, "", why[0] ? why : "disconnected",
                              FORWARD_NOTE_DISCONNECTED);
            } else if (why[0]) {
                pthread_mutex_lock(&f->mu);
                bool stream_err = f->st.state == FORWARD_STREAM_ERROR;
                pthread_mutex_unlock(&f->mu);
                if (!stream_err)
                    set_state(f, was_up ? FORWARD_DISCONNECTED : FORWARD_CONNECTING, "", why,
                              FORWARD_NOTE_ERROR);
            }
            natsConnection_Destroy(nc);
        }
        natsOptions_Destroy(o);
        if (wait_or_stop(f, delay, UINT64_MAX))
            break;
        delay = delay * 2 > FORWARD_RETRY_MAX_MS ? FORWARD_RETRY_MAX_MS : delay * 2;
    }
    return NULL;
}

/* ---- the RMA feed --------------------------------------------------------------- */

/*
 * With rma_feed = yes a second thread, with its own NATS connection and its own SQLite
 * connection, pulls <prefix>.<site>.rma.upsert from the durable consumer rma_consumer
 * and applies each message's payload, a CSV file exactly as `rmactl rma import` takes
 * it, through the import itself (db_rma_import_csv: every row checked, all or
 * nothing, upserts that leave an unchanged RMA unchanged). Then:
 *
 *     applied (committed)         ack, synchronously: the next fetch follows the ack
 *     refused (-EINVAL, -E2BIG)   term: never redelivered, the message stays in the
 *                                 stream at its stream seq, noted with the error
 *     anything else (busy, disk)  nak with a delay: redelivered, applied when it can be
 *
 * A crash between commit and ack redelivers the message; applying it again changes
 * nothing. The feed shares the forwarder's stop flag and notes, nothing else.
 */
#define FEED_FETCH_BATCH   16
#define FEED_FETCH_WAIT_MS 1000
#define FEED_NAK_DELAY_MS  2000
#define FEED_ACK_WAIT_S    60     /* the consumer redelivers an unacknowledged message */

/* The feed's own problem (connection, consumer), noted once until another one. */
static void feed_problem(forward_t *f, char *last, size_t cap, const char *text)
{
    if (strcmp(last, text) == 0)
        return;
    snprintf(last, cap, "%s", text);
    note(f, FORWARD_NOTE_RMA_ERROR, text, 0);
}

/*
 * Apply one message and settle it with the stream. Returns 0, or -EIO with buf set
 * when the connection should be dropped (the settle failed: the consumer redelivers).
 */
static int feed_one(forward_t *f, db_t *db, const regex_t *re, natsMsg *m, char *buf, size_t cap)
{
    jsMsgMetaData *meta = NULL;
    uint64_t sseq = 0;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        sseq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    db_import_report_t rep;
    char *err = NULL, text[600];
    const char *data = natsMsg_GetData(m);
    int rc = db_rma_import_csv(db, data ? data : "", (size_t)natsMsg_GetDataLength(m), re, &rep,
                               &err);
    natsStatus s;
    jsErrCode jerr = 0;
    if (rc == 0) {
        s = natsMsg_AckSync(m, NULL, &jerr);
        snprintf(text, sizeof(text), "%zu row%s: %zu RMA%s inserted, %zu updated, %zu unchanged",
                 rep.rows, rep.rows == 1 ? "" : "s", rep.inserted, rep.inserted == 1 ? "" : "s",
                 rep.updated, rep.unchanged);
        note(f, FORWARD_NOTE_RMA_APPLIED, text, sseq);
        pthread_mutex_lock(&f->mu);
        f->st.rma_applied++;
        pthread_mutex_unlock(&f->mu);
    } else if (rc == -EINVAL || rc == -E2BIG) {
        s = natsMsg_Term(m, NULL);
        snprintf(text, sizeof(text), "%s", err ? err : strerror(-rc));
        note(f, FORWARD_NOTE_RMA_REFUSED, text, sseq);
        pthread_mutex_lock(&f->mu);
        f->st.rma_refused++;
        f->st.rma_last_refused = sseq;
        pthread_mutex_unlock(&f->mu);
    } else {
        s = natsMsg_NakWithDelay(m, FEED_NAK_DELAY_MS, NULL);
        snprintf(text, sizeof(text), "stream seq %" PRIu64 " not applied now: %s (redelivered "
                 "in %d ms)", sseq, err ? err : strerror(-rc), FEED_NAK_DELAY_MS);
        note(f, FORWARD_NOTE_RMA_ERROR, text, sseq);
    }
    free(err);
    db_import_report_clear(&rep);
    if (s != NATS_OK) {
        nats_err(buf, cap, "settling an RMA upsert", s, jerr);
        return -EIO;
    }
    return 0;
}

/* The durable consumer, created when missing (bound to, so that it outlives us). */
static int feed_consumer(forward_t *f, jsCtx *js, char *buf, size_t cap)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, f->cfg->stream, f->cfg->rma_consumer, NULL, &jerr);
    if (s == NATS_OK) {
        int rc = 0;
        const char *fs = ci->Config->FilterSubject;
        if (!fs || strcmp(fs, f->feed_subject) != 0 || ci->Config->AckPolicy != js_AckExplicit) {
            snprintf(buf, cap, "consumer %s of stream %s exists but does not take %s with "
                     "explicit acks: delete it or name another rma_consumer",
                     f->cfg->rma_consumer, f->cfg->stream, f->feed_subject);
            rc = -EINVAL;
        }
        jsConsumerInfo_Destroy(ci);
        return rc;
    }
    if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
        nats_err(buf, cap, "consumer info", s, jerr);
        return jerr == JSStreamNotFoundErr ? -EINVAL : -EIO;
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = f->cfg->rma_consumer;
    cc.Description = "rmad: RMA upserts of the site (docs/forward.md)";
    cc.FilterSubject = f->feed_subject;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)FEED_ACK_WAIT_S * 1000000000;
    cc.DeliverPolicy = js_DeliverAll;
    jerr = 0;
    s = js_AddConsumer(&ci, js, f->cfg->stream, &cc, NULL, &jerr);
    if (s != NATS_OK) {
        nats_err(buf, cap, "creating consumer", s, jerr);
        return -EIO;
    }
    jsConsumerInfo_Destroy(ci);
    return 0;
}

/* One connection of the feed: returns when it failed (buf says why) or on stop. */
static void feed_connection(forward_t *f, natsConnection *nc, db_t *db, const regex_t *re,
                            char *buf, size_t cap, bool *up)
{
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        nats_err(buf, cap, "JetStream", s, 0);
        goto done;
    }
    if (feed_consumer(f, js, buf, cap) < 0)
        goto done;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = f->cfg->stream;
    so.Consumer = f->cfg->rma_consumer;
    s = js_PullSubscribe(&sub, js, f->feed_subject, f->cfg->rma_consumer, NULL, &so, &jerr);
    if (s != NATS_OK) {
        nats_err(buf, cap, "subscribing to the RMA feed", s, jerr);
        goto done;
    }
    char url[128] = "";
    (void)natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    note(f, FORWARD_NOTE_RMA_CONNECTED, url, 0);
    *up = true;
    pthread_mutex_lock(&f->mu);
    f->st.rma_feed_up = true;
    pthread_mutex_unlock(&f->mu);
    while (!stopping(f)) {
        natsMsgList list = { 0 };
        jerr = 0;
        s = natsSubscription_Fetch(&list, sub, FEED_FETCH_BATCH, FEED_FETCH_WAIT_MS, &jerr);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            nats_err(buf, cap, "fetching RMA upserts", s, jerr);
            break;
        }
        int rc = 0;
        for (int i = 0; i < list.Count && rc == 0 && !stopping(f); i++)
            rc = feed_one(f, db, re, list.Msgs[i], buf, cap);
        natsMsgList_Destroy(&list);   /* the unsettled rest are redelivered after AckWait */
        if (rc < 0)
            break;
    }
    pthread_mutex_lock(&f->mu);
    f->st.rma_feed_up = false;
    pthread_mutex_unlock(&f->mu);
done:
    natsSubscription_Destroy(sub);   /* keeps the durable consumer (libnats >= 3.4) */
    jsCtx_Destroy(js);
}

static void *feed_main(void *arg)
{
    forward_t *f = arg;
    int64_t delay = FORWARD_RETRY_MIN_MS;
    char last[256] = "";
    while (!stopping(f)) {
        char why[256] = "";
        bool up = false;
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        natsStatus s = make_options(f->cfg, &o);
        if (s == NATS_OK)
            s = natsConnection_Connect(&nc, o);
        if (s != NATS_OK)
            nats_err(why, sizeof(why), "connect", s, 0);
        else
            feed_connection(f, nc, f->feed_db, &f->feed_re, why, sizeof(why), &up);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
        if (up) {
            delay = FORWARD_RETRY_MIN_MS;
            last[0] = '\0';
        }
        if (why[0] && !stopping(f))
            feed_problem(f, last, sizeof(last), why);
        if (wait_or_stop(f, delay, UINT64_MAX))
            break;
        delay = delay * 2 > FORWARD_RETRY_MAX_MS ? FORWARD_RETRY_MAX_MS : delay * 2;
    }
    return NULL;
}

/* ---- the loop's side ------------------------------------------------------------ */

forward_t *forward_new(loop_t *loop, const char *db_path, const config_forward_t *cfg,
                       const char *rma_pattern, forward_note_fn fn, void *data, char **errmsg)
{
    forward_t *f = calloc(1, sizeof(*f));
    int p[2] = { -1, -1 };
    if (!f || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(f);
        *errmsg = strdup("forward: out of memory or file descriptors");
        return NULL;
    }
    f->cfg = cfg;
    f->loop = loop;
    f->fn = fn;
    f->data = data;
    f->pipe_rd = p[0];
    f->pipe_wr = p[1];
    f->notes_tail = &f->notes;
    f->dup_window_ms = FORWARD_MIN_DUP_WINDOW_MS;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->batch_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    f->st.state = FORWARD_CONNECTING;
    char *err = NULL;
    int rc;
    if (!(f->batch = calloc(cfg->max_inflight, sizeof(*f->batch))) ||
        asprintf(&f->filter, "%s.%s.>", cfg->subject_prefix, cfg->site) < 0 ||
        asprintf(&f->feed_subject, "%s.%s.rma.upsert", cfg->subject_prefix, cfg->site) < 0) {
        free(f->filter);
        f->filter = f->feed_subject = NULL;
        *errmsg = strdup("forward: out of memory");
        goto fail;
    }
    if ((rc = db_open(db_path, &f->db, &err)) < 0) {
        if (asprintf(errmsg, "forward: database: %s", err ? err : strerror(-rc)) < 0)
            *errmsg = NULL;
        free(err);
        goto fail;
    }
    (void)db_set_busy_timeout(f->db, 200);
    if ((rc = db_sink_mark_get(f->db, FORWARD_SINK, &f->mark, &f->mark_ms)) < 0 ||
        (rc = db_outbox_last_seq(f->db, &f->st.committed)) < 0) {
        if (asprintf(errmsg, "forward: %s", db_errmsg(f->db)) < 0)
            *errmsg = NULL;
        goto fail;
    }
    f->st.forwarded = f->mark;
    if ((rc = loop_add_fd(loop, f->pipe_rd, LOOP_IN, pipe_cb, f)) < 0) {
        if (asprintf(errmsg, "forward: %s", strerror(-rc)) < 0)
            *errmsg = NULL;
        goto fail;
    }
    if ((rc = pthread_create(&f->thread, NULL, thread_main, f)) != 0) {
        (void)loop_del_fd(loop, f->pipe_rd);
        if (asprintf(errmsg, "forward: thread: %s", strerror(rc)) < 0)
            *errmsg = NULL;
        goto fail;
    }
    f->started = true;
    if (cfg->rma_feed) {
        /* Its own connection: an import's transaction never waits on the forwarder's
         * reads, and the library's long busy timeout waits out the loop's writes. */
        if ((rc = db_open(db_path, &f->feed_db, &err)) < 0) {
            if (asprintf(errmsg, "forward: rma_feed: database: %s", err ? err : strerror(-rc)) < 0)
                *errmsg = NULL;
            free(err);
            goto fail;
        }
        if (regcomp(&f->feed_re, rma_pattern ? rma_pattern : DB_RMA_NUMBER_PATTERN,
                    REG_EXTENDED | REG_NOSUB) != 0) {
            *errmsg = strdup("forward: rma_feed: rma_pattern does not compile");
            goto fail;
        }
        f->feed_re_ok = true;
        if ((rc = pthread_create(&f->feed_thread, NULL, feed_main, f)) != 0) {
            if (asprintf(errmsg, "forward: rma_feed thread: %s", strerror(rc)) < 0)
                *errmsg = NULL;
            goto fail;
        }
        f->feed_started = true;
    }
    return f;
fail:
    forward_destroy(&f);
    return NULL;
}

void forward_destroy(forward_t **fp)
{
    forward_t *f = fp ? *fp : NULL;
    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        if (f->feed_started)
            pthread_join(f->feed_thread, NULL);
        (void)loop_del_fd(f->loop, f->pipe_rd);
        /* libnats's own threads, so that nothing runs after the daemon frees. */
        (void)nats_CloseAndWait(2000);
    }
    for (fw_note_t *n = f->notes, *next; n; n = next) {
        next = n->next;
        free(n->text);
        free(n);
    }
    batch_clear(f);
    free(f->batch);
    free(f->filter);
    free(f->feed_subject);
    if (f->feed_re_ok)
        regfree(&f->feed_re);
    db_close(&f->feed_db);
    db_close(&f->db);
    if (f->pipe_rd >= 0)
        close(f->pipe_rd);
    if (f->pipe_wr >= 0)
        close(f->pipe_wr);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->batch_mu);
    free(f);
    *fp = NULL;
}

void forward_committed(forward_t *f, uint64_t seq)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    if (seq > f->st.committed) {
        f->st.committed = seq;
        pthread_cond_signal(&f->cond);
    }
    pthread_mutex_unlock(&f->mu);
}

void forward_status(forward_t *f, forward_status_t *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}

/* ---- rmactl forward init -------------------------------------------------------- */

int forward_stream_init(const config_forward_t *cfg, int replicas, int64_t max_age_s,
                        char **report, char **errmsg)
{
    char buf[512] = "";
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int rc = -EIO;
    bool created = false;
    natsStatus s = make_options(cfg, &o);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    if (s != NATS_OK) {
        nats_err(buf, sizeof(buf), "connect", s, 0);
        goto done;
    }
    if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
        nats_err(buf, sizeof(buf), "JetStream", s, 0);
        goto done;
    }
    s = js_GetStreamInfo(&si, js, cfg->stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        char subject[160];
        const char *subjects[] = { subject };
        snprintf(subject, sizeof(subject), "%s.>", cfg->subject_prefix);
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = cfg->stream;
        sc.Description = "rmad events of every site (docs/forward.md)";
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Retention = js_LimitsPolicy;
        sc.Discard = js_DiscardOld;
        sc.Replicas = replicas;
        sc.MaxAge = max_age_s * (int64_t)1000000000;
        sc.Duplicates = (int64_t)FORWARD_INIT_DUP_WINDOW_MS * 1000000;
        sc.AllowDirect = true;
        sc.DenyDelete = true;
        jerr = 0;
        s = js_AddStream(&si, js, &sc, NULL, &jerr);
        if (s != NATS_OK) {
            nats_err(buf, sizeof(buf), "creating the stream", s, jerr);
            goto done;
        }
        created = true;
    } else if (s != NATS_OK) {
        nats_err(buf, sizeof(buf), "stream info", s, jerr);
        goto done;
    }
    int64_t dup = 0;
    if ((rc = check_stream(cfg, si->Config, &dup, buf, sizeof(buf))) < 0)
        goto done;
    const jsStreamConfig *sc = si->Config;
    char age[32] = "unlimited";
    if (sc->MaxAge)
        snprintf(age, sizeof(age), "%llds", (long long)(sc->MaxAge / 1000000000));
    if (asprintf(report, "stream %s %s: subjects %s%s, %s storage, %lld replica%s, "
                 "duplicate window %llds, max age %s, %" PRIu64 " messages",
                 cfg->stream, created ? "created" : "exists and fits",
                 sc->SubjectsLen ? sc->Subjects[0] : "?", sc->SubjectsLen > 1 ? ", ..." : "",
                 sc->Storage == js_FileStorage ? "file" : "memory", (long long)sc->Replicas,
                 sc->Replicas == 1 ? "" : "s", (long long)(dup / 1000), age,
                 si->State.Msgs) < 0) {
        *report = NULL;
        rc = -ENOMEM;
        goto done;
    }
    rc = 0;
done:
    if (rc < 0 && rc != -ENOMEM)
        *errmsg = strdup(buf[0] ? buf : "failed");
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    (void)nats_CloseAndWait(2000);
    return rc;
}
