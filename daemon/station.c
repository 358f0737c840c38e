/*
 * Stations: the receipt workflow of spec station, one transaction per scan.
 *
 * Each scan is first turned into a plan (what to store, which receipt changes, which
 * events), reading the database but writing nothing; the plan is then written in the
 * same transaction, and only after db_commit does the station's memory take the new
 * state. A failed write therefore leaves the station exactly as it was.
 *
 * The open receipt's checklist is kept as the JSON text stored in its row, parsed
 * for each scan that needs it: what a restarted station resumes is byte for byte
 * what the running one had.
 */
#include "daemon/station.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/caldate.h"
#include "daemon/checklist.h"
#include "policy/findings.h"
#include "core/msgf.h"
#include "policy/policy.h"
#include "policy/scancmd.h"
#include "daemon/station_events.h"
#include "daemon/units.h"
#include "proto/event.h"
#include "proto/labelcode.h"
#include "proto/policy_json.h"


/* Reasons the dock worker reads on the station's screen. */
#define WHY_NO_RECEIPT "not expected now: no open receipt; scan the RMA (or CMD-NORMA) first"
#define WHY_OPEN "a receipt is open"
#define WHY_SERIAL_FIRST \
    "scan the serial first (or SERIAL-DAMAGED / SERIAL-REMOVED when it cannot be read)"
/* What to scan next (docs/station.md, "Replies"). */
#define NEXT_RMA "scan an RMA (or CMD-NORMA for a unit without one)"

/* ------------------------------------------------------------------- station ----- */

typedef struct {
    char *scanner;   /* NULL: free slot */
    char aim[4];
    char *text;
    size_t len;
    int64_t t_ms;    /* scan_t.t_ms of the read that was stored */
    uint64_t tick;   /* for forgetting the least recently seen scanner */
} read_t;

struct station {
    char *name;
    db_t *db;
    policyset_t **policies;
    regex_t rma_re;
    int64_t double_read_ms;

    /* The open receipt as committed; open_id 0 when there is none. */
    int64_t open_id;
    char *open_rma;         /* NULL for CMD-NORMA */
    char *open_checklist;   /* JSON text, as stored in the row */
    char *open_serial;      /* from the checklist, for station_status */
    int open_line;          /* the unit's line of its RMA; 0 while not known */

    char *printer;          /* CUPS queue, NULL when the station has none */
    int64_t last_label;     /* last receipt labelled here: what CMD-REPRINT prints again */
    read_t reads[STATION_READS_MAX];
    uint64_t tick;

    uint64_t n_scans, n_rejected, n_double;
    /* Group commit: the read written in the caller's transaction, adopted once it ends. */
    struct plan *staged;
    const scan_t *staged_scan;  /* the caller's, until station_end_staged; NULL: a rejected read */
    /* station_outcome_t's strings of the last call */
    char *reason, *reply, *next, *out_rma, *switched_rma;
};

static void clear_open(station_t *st)
{
    st->open_id = 0;
    st->open_line = 0;
    free(st->open_rma);
    free(st->open_checklist);
    free(st->open_serial);
    st->open_rma = st->open_checklist = st->open_serial = NULL;
}

void station_destroy(station_t **stp)
{
    if (!stp || !*stp)
        return;
    station_t *st = *stp;
    station_end_staged(st, -ECANCELED, NULL);
    clear_open(st);
    for (int i = 0; i < STATION_READS_MAX; i++) {
        free(st->reads[i].scanner);
        free(st->reads[i].text);
    }
    regfree(&st->rma_re);
    free(st->name);
    free(st->printer);
    free(st->reason);
    free(st->reply);
    free(st->next);
    free(st->out_rma);
    free(st->switched_rma);
    free(st);
    *stp = NULL;
}

/* Take over the station's open receipt from the database (a restart continues it). */
static int resume(station_t *st, char **errmsg)
{
    db_receipt_t r;
    checklist_t c;
    int rc = db_receipt_get_open(st->db, st->name, &r);

    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        msgf_set(errmsg, "station %s: %s", st->name, db_errmsg(st->db));
        return rc;
    }
    if (r.checklist) {
        if ((rc = checklist_parse(r.checklist, &c)) < 0) {
            msgf_set(errmsg, "station %s: open receipt %lld: stored checklist is not readable",
                       st->name, (long long)r.id);
            db_receipt_clear(&r);
            return rc;
        }
    } else {
        /* A receipt opened without a checklist (none scanned yet) starts from defaults. */
        checklist_init(&c);
        if (!(r.checklist = checklist_text(&c))) {
            db_receipt_clear(&r);
            return -ENOMEM;
        }
    }
    if (c.serial && !(st->open_serial = strdup(c.serial))) {
        checklist_free(&c);
        db_receipt_clear(&r);
        return -ENOMEM;
    }
    checklist_free(&c);
    st->open_id = r.id;
    st->open_line = r.line;
    st->open_rma = r.rma;
    st->open_checklist = r.checklist;
    r.rma = r.checklist = NULL;
    db_receipt_clear(&r);
    return 0;
}

station_t *station_new(const config_station_t *cfg, const config_t *daemon_cfg, db_t *db,
                       policyset_t **policies_ref, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (!cfg || !cfg->name || !*cfg->name || !daemon_cfg || !db || !policies_ref) {
        msgf_set(errmsg, "station: invalid arguments");
        return NULL;
    }
    station_t *st = calloc(1, sizeof(*st));
    if (!st || !(st->name = strdup(cfg->name))) {
        free(st);
        msgf_set(errmsg, "station %s: out of memory", cfg->name);
        return NULL;
    }
    const char *pat = daemon_cfg->rma_pattern ? daemon_cfg->rma_pattern
                                              : CONFIG_DEFAULT_RMA_PATTERN;
    int rc = regcomp(&st->rma_re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char buf[256];
        regerror(rc, &st->rma_re, buf, sizeof(buf));
        msgf_set(errmsg, "station %s: rma_pattern: %s", st->name, buf);
        free(st->name);
        free(st);
        return NULL;
    }
    st->db = db;
    st->policies = policies_ref;
    if (cfg->printer && !(st->printer = strdup(cfg->printer))) {
        msgf_set(errmsg, "station %s: out of memory", st->name);
        station_destroy(&st);
        return NULL;
    }
    /* CMD-REPRINT after a restart prints the station's last label again. */
    if (st->printer && db_print_last_receipt(db, st->name, &st->last_label) < 0) {
        msgf_set(errmsg, "station %s: %s", st->name, db_errmsg(db));
        station_destroy(&st);
        return NULL;
    }
    st->double_read_ms = daemon_cfg->double_read_ms > 0 ? daemon_cfg->double_read_ms : 0;
    if (resume(st, errmsg) < 0) {
        if (errmsg && !*errmsg)
            msgf_set(errmsg, "station %s: out of memory", st->name);
        station_destroy(&st);
        return NULL;
    }
    return st;
}

const char *station_name(const station_t *st)
{
    return st->name;
}

static int compose_reply(const char *message, int64_t id, const char *rma, const char *next,
                         char **out);

const char *station_unstored_reply(station_t *st, int err)
{
    /* What a worker can do about it differs: wait (busy, full queue) or call someone. */
    const char *cause = err == -ENOSPC  ? "the disk is full"
                        : err == -EROFS  ? "the database is read-only"
                        : err == -EBUSY  ? "the database is busy"
                        : err == -ENOBUFS ? "too many scans are waiting for the database"
                                         : "rmad could not write it (its log says why)";
    char what[160];
    snprintf(what, sizeof(what), "not stored: %s; nothing changed", cause);
    char *reply = NULL;
    /* The station is as it was: the same receipt, the same next step, read afresh. */
    if (compose_reply(what, st->open_id, st->open_rma, "scan it again", &reply) < 0)
        return "not stored [unknown]: scan it again";
    free(st->reply);
    st->reply = reply;
    return reply;
}

void station_status(const station_t *st, station_status_t *out)
{
    *out = (station_status_t){
        .name = st->name,
        .receipt_id = st->open_id,
        .rma = st->open_rma,
        .serial = st->open_serial,
        .scans = st->n_scans,
        .rejected = st->n_rejected,
        .double_reads = st->n_double,
    };
}

/* --------------------------------------------------------------- double reads ---- */

static const char *scanner_of(const scan_t *scan)
{
    return scan->scanner && *scan->scanner ? scan->scanner : "unknown";
}

static read_t *read_slot(station_t *st, const char *scanner)
{
    for (int i = 0; i < STATION_READS_MAX; i++)
        if (st->reads[i].scanner && strcmp(st->reads[i].scanner, scanner) == 0)
            return &st->reads[i];
    return NULL;
}

/*
 * Spec station: "The same barcode read twice by the same scanner within 1.5 s
 * (configurable) is a double read, recorded once." The window runs from the read that
 * was stored, on the driver's monotonic clock, so a scanner stuck on one barcode still
 * leaves one row per window rather than none.
 */
static bool is_double_read(station_t *st, const scan_t *scan)
{
    if (st->double_read_ms <= 0)
        return false;
    read_t *r = read_slot(st, scanner_of(scan));
    if (!r || strcmp(r->aim, scan->aim) != 0 || r->len != scan->len ||
        memcmp(r->text, scan->text, scan->len) != 0)
        return false;
    int64_t dt = scan->t_ms - r->t_ms;
    return dt >= 0 && dt < st->double_read_ms;
}

/* After a commit: this read is the one later reads are compared with. */
static void remember_read(station_t *st, const scan_t *scan)
{
    const char *scanner = scanner_of(scan);
    read_t *r = read_slot(st, scanner);
    char *text = malloc(scan->len + 1);

    if (!text)
        return;   /* only double-read detection degrades: the next read is stored */
    memcpy(text, scan->text, scan->len);
    text[scan->len] = '\0';
    if (!r) {
        /* A free slot, else the scanner seen least recently (ids of TCP connections
         * keep changing; the table stays bounded). */
        r = &st->reads[0];
        for (int i = 0; i < STATION_READS_MAX; i++) {
            if (!st->reads[i].scanner) {
                r = &st->reads[i];
                break;
            }
            if (st->reads[i].tick < r->tick)
                r = &st->reads[i];
        }
        char *id = strdup(scanner);
        if (!id) {
            free(text);
            return;
        }
        free(r->scanner);
        r->scanner = id;
    }
    free(r->text);
    r->text = text;
    r->len = scan->len;
    snprintf(r->aim, sizeof(r->aim), "%s", scan->aim);
    r->t_ms = scan->t_ms;
    r->tick = ++st->tick;
}

/*
 * A read that could not be stored (the disk is full, the database busy): the scanner
 * read something else after the one remembered, so the next read is compared with
 * nothing. Otherwise a worker rescanning after "not stored" could be told "double read
 * ignored" about a barcode stored before the fault, and walk away from an unstored scan.
 */
static void forget_read(station_t *st, const scan_t *scan)
{
    read_t *r = read_slot(st, scanner_of(scan));
    if (!r)
        return;
    free(r->text);
    r->text = NULL;
    r->len = 0;
    r->aim[0] = '\0';
}

/* -------------------------------------------------------------------- plans ------ */

/* What one scan does, decided before anything is written. */
typedef struct {
    const char *kind;            /* scans.kind */
    bool accepted;
    char *reason;                /* rejection or refusal reason */
    station_receipt_t transition;
    int64_t receipt_id;          /* the receipt the scan belongs to; set by the insert */

    bool insert;                 /* a new receipt row: opened or refused */
    bool update;                 /* rewrite the open receipt's row */
    db_receipt_state_t state;    /* of the inserted / updated row */
    char *rma;                   /* inserted row's RMA number */
    char *checklist;             /* row's checklist JSON */
    char *serial;                /* row's serial */
    char *result;                /* completed: policy result JSON */
    char *policy_sha256;         /* completed: the deciding policy file's hash ... */
    char *policy_version;        /* ... and version (NULL: none, or no policy) */
    const char *disposition;     /* completed: static name */
    const char *row_reason;      /* row's reason (refused, cancelled) */
    char *mark_received;         /* RMA number to mark received */
    int line;                    /* the unit's line for the row; 0: as it is */

    const char *topic;           /* the transition's event, or NULL */
    json_t *fields;              /* its fields */
    json_t *received_fields;     /* rma.received: the last unit of the RMA is in */
    bool serial_mismatch;
    bool reprint;
    bool label_queued;           /* a print_jobs row was written */

    char *message;               /* accepted: what happened, for the worker */
    char *next_fixed;            /* what to scan next, when the plan knows better */
    char *next;                  /* what to scan next, after this scan (write_plan) */
    char *reply;                 /* "message [state]: next" (write_plan) */
    int64_t cancel_id;           /* a second RMA switched: the receipt it cancels */
    char *cancel_rma;            /* that receipt's RMA, NULL for CMD-NORMA */
    int64_t label_receipt;       /* an rmad label was looked up: CMD-REPRINT's receipt */
} plan_t;

struct plan { plan_t p; };

static void plan_free(plan_t *pl)
{
    free(pl->message);
    free(pl->next_fixed);
    free(pl->next);
    free(pl->reply);
    free(pl->cancel_rma);
    free(pl->reason);
    free(pl->rma);
    free(pl->checklist);
    free(pl->serial);
    free(pl->result);
    free(pl->policy_sha256);
    free(pl->policy_version);
    free(pl->mark_received);
    json_decref(pl->fields);
    json_decref(pl->received_fields);
    memset(pl, 0, sizeof(*pl));
}

static int reject(plan_t *pl, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A scan that does not fit: stored as rejected with the reason, nothing else changes. */
static int reject(plan_t *pl, const char *kind, const char *fmt, ...)
{
    va_list ap;
    pl->kind = kind;
    pl->accepted = false;
    va_start(ap, fmt);
    int n = vasprintf(&pl->reason, fmt, ap);
    va_end(ap);
    if (n < 0) {
        pl->reason = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int say(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set *out (freed first) to a malloc'd message. 0 or -ENOMEM. */
static int say(char **out, const char *fmt, ...)
{
    va_list ap;
    free(*out);
    va_start(ap, fmt);
    int n = vasprintf(out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int dup_or_null(const char *s, char **out)
{
    *out = NULL;
    return !s || (*out = strdup(s)) ? 0 : -ENOMEM;
}

/* The open receipt's checklist as committed. */
static int open_checklist(const station_t *st, checklist_t *c)
{
    if (!st->open_checklist) {
        checklist_init(c);
        return 0;
    }
    return checklist_parse(st->open_checklist, c);
}

/* An accepted scan that changed the open receipt's checklist. */
static int plan_update(station_t *st, const checklist_t *c, const char *kind, plan_t *pl)
{
    pl->kind = kind;
    pl->accepted = true;
    pl->update = true;
    pl->state = DB_RECEIPT_OPEN;
    pl->receipt_id = st->open_id;
    if (!(pl->checklist = checklist_text(c)))
        return -ENOMEM;
    return dup_or_null(c->serial, &pl->serial);
}

/* The RMA of the open receipt, read in this transaction (a re-import may have
 * changed it since the receipt opened). 1 when filled, 0 for none (CMD-NORMA). */
static int open_rma_row(station_t *st, db_rma_t *rma)
{
    if (!st->open_rma)
        return 0;
    /* The unit's own line: the policy sees it as a one-line RMA (issue 11). Before
     * the line is known, the first line stands in (accessory prompts and the like). */
    int r = db_rma_get_line(st->db, st->open_rma, st->open_line, rma);
    if (r == -ENOENT && st->open_line)
        r = db_rma_get(st->db, st->open_rma, rma);
    return r < 0 ? r : 1;
}

/* The current set's policy for a vendor: looked up at each use, since a reload
 * (SIGHUP) swaps the set and frees the old one. */
static const policy_t *policy_of(const station_t *st, const char *vendor)
{
    return *st->policies ? policyset_for_vendor(*st->policies, vendor) : NULL;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}



/*
 * Record the serial. A mismatch is recorded and does not block scanning (spec
 * station, step 2): the policy engine's built-in check quarantines it at CMD-DONE.
 * With RMA lines (issue 11) the serial also picks the unit's line when it is not
 * known yet, and a serial already received on the RMA is a double receipt: the scan
 * is rejected (returns 1) and the receipt waits for the right unit.
 */
static int set_serial(station_t *st, checklist_t *c, const char *serial, plan_t *pl)
{
    units_serial_t u = { .line = st->open_line, .match = -1 };
    int r;

    if (st->open_rma && (r = units_for_serial(st->db, st->open_rma, st->open_line, serial, &u)) < 0)
        return r;
    if (u.received_in) {
        r = reject(pl, "serial", "double receipt: serial %s of %s is already received "
                   "(receipt %lld): scan this unit's own serial, or CMD-CANCEL",
                   serial, st->open_rma, (long long)u.received_in);
        return r < 0 ? r : 1;
    }
    free(c->serial);
    if (!(c->serial = strdup(serial)))
        return -ENOMEM;
    c->serial_match = u.match;
    pl->serial_mismatch = c->serial_match == 0;
    if (u.line != st->open_line)
        pl->line = u.line;
    return 0;
}

static int plan_open(const char *number, const db_rma_t *rma, const char *kind, plan_t *pl)
{
    checklist_t c;
    checklist_init(&c);
    pl->kind = kind;
    pl->accepted = true;
    pl->transition = STATION_RECEIPT_OPENED;
    pl->insert = true;
    pl->state = DB_RECEIPT_OPEN;
    if (dup_or_null(number, &pl->rma) < 0 || !(pl->checklist = checklist_text(&c)))
        return -ENOMEM;
    /* With several lines and none chosen yet, no model is the unit's. */
    bool known = rma && (pl->line || rma->lines <= 1);
    const char *vendor = rma ? nonempty(rma->vendor) : NULL;
    const char *model = known ? nonempty(rma->model) : NULL;
    int r = number ? say(&pl->message, "for %s%s%s%s%s%s", number, vendor || model ? " (" : "",
                         vendor ? vendor : "", vendor && model ? " " : "", model ? model : "",
                         vendor || model ? ")" : "")
                   : say(&pl->message, "without RMA (CMD-NORMA)");
    if (r < 0)
        return r;
    pl->topic = "receipt.opened";
    pl->fields = station_ev_opened(number, vendor, model, known ? rma->line : 0);
    return pl->fields ? 0 : -ENOMEM;
}

/* Spec station, step 1: an unknown or already-received RMA is refused, and the
 * refusal is itself a (closed) receipt, so the audit trail shows the unit came. */

static int plan_refuse(const char *number, const db_rma_t *rma, const char *why, plan_t *pl)
{
    pl->kind = "rma";
    pl->accepted = true;
    pl->transition = STATION_RECEIPT_REFUSED;
    pl->insert = true;
    pl->state = DB_RECEIPT_REFUSED;
    if (!(pl->rma = strdup(number)) || !(pl->reason = strdup(why)))
        return -ENOMEM;
    pl->row_reason = pl->reason;
    /* The worker must not go on inspecting a unit that is going back as it came. */
    if (!(pl->next_fixed = strdup("set the unit aside as refused (it goes back as received), "
                                  "then scan the next RMA (or CMD-NORMA)")))
        return -ENOMEM;
    pl->topic = "receipt.refused";
    pl->fields = station_ev_refused(number, why, rma);
    return pl->fields ? 0 : -ENOMEM;
}

/* 1 with *why (malloc'd "rule: text") when the vendor's policy refuses this RMA as
 * scanned, before any inspection; 0 when not (or no policy); negative errno. */
int station_rma_refusal(policyset_t *policies, const db_rma_t *rma, char **why)
{
    const policy_t *p = policies ? policyset_for_vendor(policies, rma->vendor) : NULL;
    if (!p)
        return 0;
    checklist_t c;
    checklist_init(&c);
    json_t *cs = checklist_case(rma, &c, NULL, 0, caldate_today());
    checklist_free(&c);
    if (!cs)
        return -ENOMEM;
    policy_case_t pc;
    char *err = NULL;
    int r = case_from_json_policy(cs, p, &pc, &err);
    json_decref(cs);
    free(err);
    if (r < 0)
        return 0; /* a stored RMA the contract cannot express: CMD-DONE will say so */
    char *rule = NULL, *text = NULL;
    r = policy_rma_refusal(p, &pc, &rule, &text);
    policy_case_free(&pc);
    if (r > 0 && asprintf(why, "%s (%s)", text, rule) < 0)
        r = -ENOMEM;
    free(rule);
    free(text);
    return r;
}

static int rma_refused_by_policy(station_t *st, const db_rma_t *rma, char **why)
{
    return station_rma_refusal(*st->policies, rma, why);
}

/* Nothing accepted on the open receipt but its RMA: its checklist is a fresh one. */
static bool open_is_fresh(const station_t *st)
{
    checklist_t fresh, c;
    checklist_init(&fresh);
    if (open_checklist(st, &c) < 0)
        return false;
    char *a = checklist_text(&fresh), *b = checklist_text(&c);
    bool same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    checklist_free(&c);
    return same;
}

/* A second RMA or CMD-NORMA while a receipt is open: rejected, with the way out. */
static int reject_open(station_t *st, const char *what, plan_t *pl)
{
    int r = reject(pl, strcmp(what, "CMD-NORMA") ? "rma" : "command", WHY_OPEN " (%s)",
                   st->open_rma ? st->open_rma : "no RMA");
    if (r == 0)
        r = say(&pl->next_fixed, "finish it (CMD-DONE) or cancel it (CMD-CANCEL), then scan %s again",
                what);
    return r;
}

static int plan_rma(station_t *st, const char *number, plan_t *pl)
{
    db_rma_t rma;

    if (st->open_id && st->open_rma && strcasecmp(st->open_rma, number) == 0)
        return reject(pl, "rma", "%s is already open here", st->open_rma);
    /*
     * Issue 10: the common mis-scan is the RMA of the wrong box, noticed at once. A
     * second RMA on a receipt with nothing but its RMA scanned switches: the first
     * receipt is cancelled (recorded, its RMA stays open) and this RMA is taken as if
     * nothing was open. Once anything else was scanned the worker must decide.
     */
    if (st->open_id && !open_is_fresh(st))
        return reject_open(st, number, pl);
    if (st->open_id) {
        pl->cancel_id = st->open_id;
        if (dup_or_null(st->open_rma, &pl->cancel_rma) < 0)
            return -ENOMEM;
    }
    int r = db_rma_get(st->db, number, &rma);
    if (r == -ENOENT)
        return plan_refuse(number, NULL, "unknown RMA", pl);
    if (r < 0)
        return r;
    if (rma.status == DB_RMA_CLOSED) {
        char *closed = NULL, *why = NULL;
        int64_t at;
        if ((r = db_rma_closed(st->db, number, &closed, &at)) < 0)
            return r;
        r = say(&why, "RMA closed: %s", closed ? closed : "no reason given");
        free(closed);
        if (r == 0)
            r = plan_refuse(number, &rma, why, pl);
        free(why);
        return r;
    }
    /* Issue 11: an RMA authorises its units; one more is refused. */
    int line = 0;
    r = rma.status == DB_RMA_RECEIVED ? -ENOSPC : units_line_at_open(st->db, number, &line);
    if (r == -ENOSPC && rma.authorised <= 1)
        return plan_refuse(number, &rma, "RMA already received", pl);
    if (r == -ENOSPC) {
        char *why = NULL;
        if ((r = say(&why, "all %d units of %s received", rma.authorised, number)) == 0)
            r = plan_refuse(number, &rma, why, pl);
        free(why);
        return r;
    }
    if (r < 0)
        return r;
    if (line && (r = db_rma_get_line(st->db, number, line, &rma)) < 0)
        return r;
    /*
     * Spec station, step 1: an expired RMA is refused at the dock. Whether it is
     * expired is the vendor's clause (EverFocus: valid 30 days), so the policy says,
     * through its rules that test the RMA alone; the reason names the clause.
     */
    char *why = NULL;
    r = rma_refused_by_policy(st, &rma, &why);
    if (r < 0)
        return r;
    if (r > 0) {
        r = plan_refuse(number, &rma, why, pl);
        free(why);
        return r;
    }
    pl->line = line;
    return plan_open(number, &rma, "rma", pl);
}

static int plan_cancel(station_t *st, plan_t *pl)
{
    checklist_t c;
    int r = open_checklist(st, &c);
    if (r < 0)
        return r;
    pl->kind = "command";
    pl->accepted = true;
    pl->transition = STATION_RECEIPT_CANCELLED;
    pl->update = true;
    pl->state = DB_RECEIPT_CANCELLED;
    pl->receipt_id = st->open_id;
    pl->row_reason = "cancelled at the station (CMD-CANCEL)";
    r = dup_or_null(st->open_checklist, &pl->checklist);
    if (r == 0)
        r = dup_or_null(c.serial, &pl->serial);
    checklist_free(&c);
    if (r < 0)
        return r;
    if (say(&pl->message, "receipt %lld (%s) cancelled, its RMA stays open", (long long)st->open_id,
            st->open_rma ? st->open_rma : "no RMA") < 0)
        return -ENOMEM;
    pl->topic = "receipt.cancelled";
    pl->fields = station_ev_cancelled(st->open_rma, NULL);
    return pl->fields ? 0 : -ENOMEM;
}

/* A decision without a policy, in the shape of result_to_json(): held for a person. */
static json_t *held_result(const char *rule, const char *text)
{
    return json_pack("{s:s, s:i, s:{s:s, s:n, s:n, s:n}, s:[s], s:[{s:s, s:s}], s:n}",
                     "disposition", "quarantine", "restocking_fee_pct", 0,
                     "warranty", "status", "unknown", "basis", "starts", "ends",
                     "flags", "manual_review",
                     "reasons", "rule", rule, "text", text,
                     "policy");
}

/* Evaluate the case with the policy; the result JSON, or NULL with *r set. On a
 * case the parser refuses, *why says which field (the scan is then rejected). */
static json_t *evaluate(const policy_t *pol, json_t *cs, char **why, int *r)
{
    policy_case_t pc;
    policy_result_t res;

    *r = case_from_json_policy(cs, pol, &pc, why);
    if (*r < 0)
        return NULL;
    *r = policy_evaluate(pol, &pc, &res);
    policy_case_free(&pc);
    if (*r < 0)
        return NULL;
    json_t *j = result_to_json(&res, pol);
    policy_result_free(&res);
    if (!j)
        *r = -ENOMEM;
    return j;
}

/*
 * What to scan next at the station once receipt `id` (0: none open) has RMA `number`
 * (NULL: CMD-NORMA) and the stored checklist `cl` (NULL: fresh). Reads only.
 */
static int next_for_state(station_t *st, int64_t id, const char *number, int line,
                          const char *cl, char **out)
{
    checklist_t c;
    db_rma_t rma;
    checklist_needs_t n = { 0 };
    int has = 0, r;

    if (!id)
        return say(out, "%s", NEXT_RMA);
    if (cl) {
        if ((r = checklist_parse(cl, &c)) < 0)
            return r;
    } else {
        checklist_init(&c);
    }
    if (number) {
        /* The unit's line: its accessories are what is asked for (issue 11). */
        r = db_rma_get_line(st->db, number, line, &rma);
        if (r == -ENOENT && line)
            r = db_rma_get(st->db, number, &rma);
        if (r == 0)
            has = 1;
        else if (r != -ENOENT)
            goto out;
    }
    if ((r = checklist_needs(has ? policy_of(st, rma.vendor) : NULL, &c, has ? &rma : NULL, &n)) == 0)
        r = checklist_next(&n, out);
out:
    checklist_needs_free(&n);
    checklist_free(&c);
    return r;
}

/* "message [receipt 3 RMA-5001]: next" or "message [no receipt open]: next". */
static int compose_reply(const char *message, int64_t id, const char *rma, const char *next,
                         char **out)
{
    if (id)
        return say(out, "%s [receipt %lld %s]: %s", message, (long long)id,
                   rma ? rma : "no RMA", next);
    return say(out, "%s [no receipt open]: %s", message, next);
}


/*
 * CMD-DONE (spec station, step 4): evaluate, complete the receipt, mark the RMA
 * received, and report inspection.completed, all in the caller's transaction.
 */
static int plan_done(station_t *st, plan_t *pl)
{
    checklist_t c;
    db_rma_t rma;
    const policy_t *pol = NULL;
    checklist_needs_t needs = { 0 };
    json_t *result = NULL, *cs = NULL;
    char *why = NULL;
    int has_rma, r = open_checklist(st, &c);

    if (r < 0)
        return r;
    /* Spec station: "CMD-DONE before a serial" is rejected; a label that cannot be
     * read (SERIAL-DAMAGED / SERIAL-REMOVED) is what the policy decides on instead. */
    if (!c.serial && c.serial_label == LABEL_INTACT) {
        r = reject(pl, "command", WHY_SERIAL_FIRST);
        goto out;
    }
    if ((has_rma = r = open_rma_row(st, &rma)) < 0) {
        if (r == -ENOENT)   /* RMAs are never deleted; say so rather than fail the scan */
            r = reject(pl, "command", "RMA %s is no longer on record: cancel (CMD-CANCEL)",
                       st->open_rma);
        goto out;
    }
    if (has_rma && rma.status == DB_RMA_RECEIVED) {
        /* Two stations opened the same RMA; the other one completed first. */
        r = reject(pl, "command",
                   "RMA %s was received meanwhile by another receipt: cancel (CMD-CANCEL)",
                   st->open_rma);
        goto out;
    }
    if (has_rma && rma.status == DB_RMA_CLOSED) {
        r = reject(pl, "command", "RMA %s was closed meanwhile (rmactl rma close): cancel "
                   "(CMD-CANCEL)", st->open_rma);
        goto out;
    }
    /* Issue 11: the unit's line decides what the policy sees; the serial or the
     * model tells it when the RMA has several lines. */
    units_serial_t unit = { .line = st->open_line, .match = -1 };
    if (has_rma && !st->open_line) {
        char *lines = units_lines_with_room(st->db, st->open_rma);
        r = lines ? reject(pl, "command", "which line is this unit? scan its model: %s", lines)
                  : -ENOMEM;
        free(lines);
        goto out;
    }
    if (has_rma && c.serial) {
        if ((r = units_for_serial(st->db, st->open_rma, st->open_line, c.serial, &unit)) < 0)
            goto out;
        if (unit.received_in) {
            r = reject(pl, "command", "double receipt: serial %s of %s was received meanwhile "
                       "(receipt %lld): cancel (CMD-CANCEL)", c.serial, st->open_rma,
                       (long long)unit.received_in);
            goto out;
        }
    }
    /* A unit counts on its line unless its serial did not match (db.h). */
    bool counts = c.serial_match != 0;
    if (has_rma && counts && rma.line_received >= rma.quantity) {
        r = reject(pl, "command", "all %d units of line %d of %s were received meanwhile: "
                   "cancel (CMD-CANCEL)", rma.quantity, rma.line, st->open_rma);
        goto out;
    }
    if (has_rma)
        pol = policy_of(st, rma.vendor);
    /* The decision's date is the site's ([daemon] timezone, else the system's zone):
     * read once, so the case and the event's decided_on agree across midnight. */
    caldate_t today = caldate_today();

    /*
     * Issue 10: a default the worker did not confirm never decides the receipt. Each
     * unanswered item that would change the outcome is asked for, first one named.
     * Spec station, step 3: what the policy expects and was not scanned is missing.
     */
    if ((r = checklist_needs(pol, &c, has_rma ? &rma : NULL, &needs)) < 0)
        goto out;
    if (needs.items) {
        char *item = NULL;
        if ((r = checklist_item_text(&needs, false, &item)) == 0 &&
            (r = reject(pl, "command", "not finished: %s not answered", item)) == 0 &&
            (r = checklist_item_text(&needs, true, &pl->next_fixed)) == 0)
            r = 0;
        free(item);
        goto out;
    }
    const char **missing = needs.missing;
    size_t n_missing = needs.n_missing;

    if (!has_rma) {
        /*
         * CMD-NORMA: with no RMA the vendor, and so the policy, is unknown. The contract
         * lets the policy decide ("some vendors refuse, others quarantine"), but no
         * policy can be chosen without a vendor: the unit is held for a person.
         */
        result = held_result("rmad-no-rma", "no RMA: vendor unknown, held for a person");
    } else if (!pol) {
        char *text;
        if (asprintf(&text, "no policy for vendor '%s': held for a person", rma.vendor) < 0) {
            r = -ENOMEM;
            goto out;
        }
        result = held_result("rmad-no-policy", text);
        free(text);
    } else {
        /* The policy's own serial check decides as for a one-line RMA. */
        db_rma_t *unit_rma = malloc(sizeof(*unit_rma));
        if (unit_rma) {
            *unit_rma = rma;
            units_case_expected(&rma, &unit, c.serial ? c.serial : "", unit_rma->expected_serial,
                                sizeof(unit_rma->expected_serial));
            cs = checklist_case(unit_rma, &c, missing, n_missing, today);
            free(unit_rma);
        }
        if (!cs) {
            r = -ENOMEM;
            goto out;
        }
        result = evaluate(pol, cs, &why, &r);
        if (!result && r == -EINVAL) {
            /* Stored RMA data the case contract refuses: nothing to decide on. */
            r = reject(pl, "command", "cannot evaluate the policy: %s", why ? why : "invalid case");
            goto out;
        }
    }
    if (!result) {
        r = r < 0 ? r : -ENOMEM;
        goto out;
    }

    const char *disp = json_string_value(json_object_get(result, "disposition"));
    int d = disp ? enumdef_find(&ENUM_DISPOSITION, disp) : -1;
    pl->disposition = d >= 0 ? ENUM_DISPOSITION.names[d] : "quarantine";
    pl->kind = "command";
    pl->accepted = true;
    pl->transition = STATION_RECEIPT_COMPLETED;
    pl->update = true;
    pl->state = DB_RECEIPT_COMPLETED;
    pl->receipt_id = st->open_id;

    /* The row keeps the final checklist with what was missing, for the audit trail. */
    json_t *final = checklist_json(&c);
    if (!final || json_object_set_new(final, "accessories_missing",
                                      checklist_jnames(missing, n_missing)) < 0) {
        json_decref(final);
        r = -ENOMEM;
        goto out;
    }
    pl->checklist = checklist_dump(final);
    json_decref(final);
    pl->result = checklist_dump(result);
    /* Issue 13: the receipt names the policy as it was (hash and version). */
    json_t *pj = json_object_get(result, "policy");
    const char *psha = json_string_value(json_object_get(pj, "sha256"));
    const char *pver = json_string_value(json_object_get(pj, "version"));
    if ((psha && !(pl->policy_sha256 = strdup(psha))) ||
        (pver && !(pl->policy_version = strdup(pver)))) {
        r = -ENOMEM;
        goto out;
    }
    /* The last authorised unit makes the RMA received (issue 11). */
    int received = has_rma ? rma.received + (counts ? 1 : 0) : 0;
    bool last = has_rma && counts && received >= rma.authorised;
    pl->line = st->open_line;
    if (!pl->checklist || !pl->result || dup_or_null(c.serial, &pl->serial) < 0 ||
        (last && !(pl->mark_received = strdup(st->open_rma)))) {
        r = -ENOMEM;
        goto out;
    }
    if (last && !(pl->received_fields = station_ev_rma_received(&rma))) {
        r = -ENOMEM;
        goto out;
    }

    /* Spec events: inspection.completed carries the whole decision, the result fields
     * exactly as `rmactl policy eval` prints them. */
    pl->topic = "inspection.completed";
    pl->fields = station_ev_completed(st->open_rma, has_rma ? &rma : NULL, received, c.serial,
                                      c.serial_match, &c, missing, n_missing);
    char day[CALDATE_STRLEN];
    caldate_format(today, day);
    if (!pl->fields || json_object_update(pl->fields, result) < 0 ||
        json_object_set_new(pl->fields, "decided_on", json_string(day)) < 0 ||
        json_object_set_new(pl->fields, "timezone", json_string(caldate_zone_name())) < 0) {
        r = -ENOMEM;
        goto out;
    }
    double fee = json_number_value(json_object_get(result, "restocking_fee_pct"));
    if (fee > 0)
        r = say(&pl->message, "receipt %lld completed: %s, restocking fee %g%%",
                (long long)st->open_id, pl->disposition, fee);
    else
        r = say(&pl->message, "receipt %lld completed: %s", (long long)st->open_id,
                pl->disposition);
out:
    checklist_needs_free(&needs);
    free(why);
    json_decref(cs);
    json_decref(result);
    checklist_free(&c);
    return r;
}

/*
 * ACC-ALL / ACC-NONE: the accessories answered at once. ACC-ALL adds every accessory
 * the policy expects for the product; ACC-NONE says the ones not scanned are missing.
 * Sets the message naming them.
 */
static int answer_accessories(station_t *st, checklist_t *c, bool all, plan_t *pl)
{
    db_rma_t rma;
    checklist_needs_t n = { 0 };
    const policy_t *pol = NULL;
    int has = open_rma_row(st, &rma), r = 0;

    if (has < 0)
        return has;
    if (has && (pol = policy_of(st, rma.vendor)) && (r = checklist_missing(pol, &rma, c, &n)) < 0)
        goto out;
    c->answered |= POLICY_ITEM_ACCESSORIES;
    size_t len = 0;
    char *msg = NULL;
    FILE *f = open_memstream(&msg, &len);
    if (!f) {
        r = -ENOMEM;
        goto out;
    }
    if (!n.n_missing)
        fputs(c->n_acc ? "accessories complete" : "no accessories expected for this product", f);
    else
        fputs(all ? "accessories present: " : "accessories missing: ", f);
    if (n.n_missing)
        checklist_put_names(f, n.missing, n.n_missing);
    if (fclose(f) != 0 || !msg) {
        free(msg);
        r = -ENOMEM;
        goto out;
    }
    free(pl->message);
    pl->message = msg;
    for (size_t i = 0; all && i < n.n_missing && r == 0; i++)
        if ((r = checklist_add_acc(c, n.missing[i])) == 1)
            r = reject(pl, "command", "more than %d accessories on one receipt", CHECKLIST_MAX_ACC);
out:
    checklist_needs_free(&n);
    return r;
}

/*
 * FIND-<NAME> of a policy's own vocabulary (issue 13): recorded when the open unit's
 * vendor policy declares it (or no vendor is known yet: CMD-NORMA); a finding of
 * another vendor's policy would be dropped by this one, so it is refused here.
 */
static int plan_own_finding(station_t *st, checklist_t *c, const char *name, plan_t *pl)
{
    db_rma_t rma;
    int has = open_rma_row(st, &rma), r;
    if (has < 0 && has != -ENOENT)
        return has;
    const policy_t *pol = has == 1 ? policy_of(st, rma.vendor) : NULL;
    if (has == 1 && (!pol || policy_finding_bit(pol, name) < 0))
        return reject(pl, "command", "finding %s is not one of %s's (its policy does not "
                      "declare it)", name, rma.vendor);
    if ((r = checklist_add_xfind(c, name)) == 1)
        return reject(pl, "command", "more than %d policy findings on one receipt",
                      CHECKLIST_MAX_XFIND);
    return r;
}

/* Checklist commands (spec station, "Command barcodes"). Each answers its item. */
static int plan_checklist_cmd(station_t *st, const scancmd_t *cmd, const char *text, plan_t *pl)
{
    checklist_t c;
    int r = open_checklist(st, &c);
    if (r < 0)
        return r;
    switch (cmd->kind) {
    case SCANCMD_PKG_ORIGINAL: c.packaging = PKG_ORIGINAL; break;
    case SCANCMD_PKG_REPLACEMENT: c.packaging = PKG_REPLACEMENT; break;
    case SCANCMD_PKG_NONE: c.packaging = PKG_NONE; break;
    case SCANCMD_FOAM_MISSING: c.foam = false; break;
    case SCANCMD_SEAL_BROKEN: c.seal = SEAL_BROKEN; break;
    case SCANCMD_SEAL_INTACT: c.seal = SEAL_INTACT; break;
    case SCANCMD_PKG_UNMARKED: c.rma_marked = false; break;
    case SCANCMD_SERIAL_DAMAGED: c.serial_label = LABEL_DAMAGED; break;
    case SCANCMD_SERIAL_REMOVED: c.serial_label = LABEL_REMOVED; break;
    case SCANCMD_FAULT_CONFIRMED: c.fault = FAULT_CONFIRMED; break;
    case SCANCMD_FAULT_NFF: c.fault = FAULT_NO_FAULT_FOUND; break;
    case SCANCMD_FAULT_DOA: c.fault = FAULT_DOA; break;
    case SCANCMD_FAULT_UNTESTED: c.fault = FAULT_NOT_TESTED; break;
    case SCANCMD_FIND:
        if (cmd->finding < FINDING__COUNT) {
            c.findings |= 1u << cmd->finding;
            break;
        }
        if ((r = plan_own_finding(st, &c, cmd->name, pl)) < 0 || pl->reason)
            goto out;
        break;
    case SCANCMD_CMP:
        free(c.component);
        if (!(c.component = strdup(cmd->name)))
            r = -ENOMEM;
        break;
    case SCANCMD_ACC:
        if ((r = checklist_add_acc(&c, cmd->name)) == 1) {
            r = reject(pl, "command", "more than %d accessories on one receipt", CHECKLIST_MAX_ACC);
            goto out;
        }
        break;
    case SCANCMD_ACC_ALL:
    case SCANCMD_ACC_NONE:
        r = answer_accessories(st, &c, cmd->kind == SCANCMD_ACC_ALL, pl);
        if (r < 0 || pl->reason)   /* failed, or rejected: the list is full */
            goto out;
        break;
    default:
        r = -EINVAL;   /* not a checklist command: a bug in the caller */
        break;
    }
    switch (cmd->kind) {
    case SCANCMD_PKG_ORIGINAL: case SCANCMD_PKG_REPLACEMENT: case SCANCMD_PKG_NONE:
        c.answered |= POLICY_ITEM_PACKAGING;
        break;
    case SCANCMD_SEAL_BROKEN: case SCANCMD_SEAL_INTACT:
        c.answered |= POLICY_ITEM_SEAL;
        break;
    case SCANCMD_FAULT_CONFIRMED: case SCANCMD_FAULT_NFF: case SCANCMD_FAULT_DOA:
    case SCANCMD_FAULT_UNTESTED:
        c.answered |= POLICY_ITEM_FAULT;
        break;
    default:
        break;
    }
    if (r == 0 && !pl->message)
        r = say(&pl->message, "%s recorded", text);
    if (r == 0)
        r = plan_update(st, &c, "command", pl);
out:
    checklist_free(&c);
    return r;
}

static int plan_command(station_t *st, const scancmd_t *cmd, const char *text, plan_t *pl)
{
    switch (cmd->kind) {
    case SCANCMD_NORMA:
        /* Spec station, step 1: a unit with no RMA; the serial comes next. */
        if (st->open_id)
            return reject_open(st, "CMD-NORMA", pl);
        return plan_open(NULL, NULL, "command", pl);
    case SCANCMD_REPRINT:
        /* The label is queued with the scan (write_plan); the spooler prints it. */
        if (!st->printer)
            return reject(pl, "command", "this station has no printer");
        if (!st->last_label)
            return reject(pl, "command", "no label printed at this station yet");
        pl->kind = "command";
        pl->accepted = true;
        pl->reprint = true;
        pl->receipt_id = st->open_id;
        return say(&pl->message, "label of receipt %lld queued again", (long long)st->last_label);
    default:
        break;
    }
    if (!st->open_id)
        return reject(pl, "command", WHY_NO_RECEIPT);
    switch (cmd->kind) {
    case SCANCMD_DONE: return plan_done(st, pl);
    case SCANCMD_CANCEL: return plan_cancel(st, pl);
    default: return plan_checklist_cmd(st, cmd, text, pl);
    }
}

/*
 * The serial just recorded. A mismatch is accepted (spec station, step 2) but the
 * worker is told at once: it is what a box mix-up looks like.
 */
static int serial_message(const checklist_t *c, plan_t *pl)
{
    if (c->serial_match == 0)
        return say(&pl->message, "serial %s recorded, but it is NOT the RMA's serial: the unit "
                   "will be quarantined (wrong box? CMD-CANCEL)", c->serial);
    return say(&pl->message, "serial %s recorded%s", c->serial,
               c->serial_match == 1 ? ", matches the RMA" : "");
}

/*
 * One of rmad's own label barcodes (proto/labelcode.h). Never a serial or accessory:
 * with a receipt open it is rejected; with none it looks the receipt up and makes
 * it the one CMD-REPRINT prints again (when it has a label).
 */
static int plan_label(station_t *st, int64_t id, plan_t *pl)
{
    db_receipt_t r;

    if (st->open_id)
        return reject(pl, "label", "rmad label%s, not the unit's: scan the unit's own serial "
                      "or accessory barcodes", id ? "" : " (older form)");
    if (!id)
        return reject(pl, "label", "rmad label of an older form, without receipt number: "
                      "look the receipt up with rmactl receipts");
    int rc = db_receipt_get(st->db, id, &r);
    if (rc == -ENOENT)
        return reject(pl, "label", "rmad label of receipt %lld, which is not on record",
                      (long long)id);
    if (rc < 0)
        return rc;
    pl->kind = "label";
    pl->accepted = true;
    pl->receipt_id = id;
    bool labelled = r.state == DB_RECEIPT_COMPLETED || r.state == DB_RECEIPT_REFUSED;
    if (labelled)
        pl->label_receipt = id;
    rc = say(&pl->message, "rmad label of receipt %lld: %s, %s%s%s (station %s)%s",
             (long long)id, r.rma ? r.rma : "no RMA", db_receipt_state_name(r.state),
             r.disposition ? " " : "", r.disposition ? r.disposition : "", r.station,
             labelled && st->printer ? "; CMD-REPRINT prints it again" : "");
    db_receipt_clear(&r);
    return rc;
}

/*
 * A GS1 element string: (21) gives the serial, (01) the product (spec station,
 * classification 3). A malformed string or a wrong check digit is rejected with
 * gs1_parse's reason: a misread must never become a serial.
 */
static int plan_gs1(station_t *st, const scan_t *scan, plan_t *pl)
{
    gs1_t g;
    const char *why = NULL;
    checklist_t c;

    if (gs1_parse(scan->text, scan->len, &g, &why) < 0)
        return reject(pl, "gs1", "GS1 element string: %s", why ? why : "not valid");
    if (!st->open_id)
        return reject(pl, "gs1", WHY_NO_RECEIPT);
    if (!(g.present & (GS1_SERIAL | GS1_GTIN)))
        return reject(pl, "gs1",
                      "not expected now: GS1 element string without (21) serial or (01) GTIN");
    int r = open_checklist(st, &c);
    if (r < 0)
        return r;
    if ((g.present & GS1_SERIAL) && c.serial) {
        r = reject(pl, "gs1", "not expected now: the serial is already recorded (%s)", c.serial);
        goto out;
    }
    if ((g.present & GS1_SERIAL) && (r = set_serial(st, &c, g.serial, pl)) != 0) {
        if (r == 1)   /* rejected: a double receipt */
            r = 0;
        goto out;
    }
    if (g.present & GS1_GTIN) {
        free(c.gtin);
        if (!(c.gtin = strdup(g.gtin))) {
            r = -ENOMEM;
            goto out;
        }
    }
    if (g.present & GS1_SERIAL)
        r = serial_message(&c, pl);
    else
        r = say(&pl->message, "GTIN %s recorded", g.gtin);
    if (r == 0)
        r = plan_update(st, &c, "gs1", pl);
out:
    checklist_free(&c);
    return r;
}

/*
 * Anything else (classification 4): an accessory part number the policy lists for
 * this product, else the serial while the receipt still needs one. The part number
 * is tried first: a listed part is a certain identification, a serial a fallback.
 */
static int plan_text(station_t *st, const char *text, plan_t *pl)
{
    checklist_t c;
    db_rma_t rma;
    int has_rma, r;

    if (!st->open_id)
        return reject(pl, "text", WHY_NO_RECEIPT);
    if ((r = open_checklist(st, &c)) < 0)
        return r;
    if ((has_rma = r = open_rma_row(st, &rma)) < 0)
        goto out;
    const policy_t *pol = has_rma ? policy_of(st, rma.vendor) : NULL;
    const char *acc =
        pol ? policy_accessory_by_part(pol, nonempty(rma.model), nonempty(rma.family), text) : NULL;
    if (acc) {
        if ((r = checklist_add_acc(&c, acc)) == 1) {
            r = reject(pl, "accessory", "more than %d accessories on one receipt",
                       CHECKLIST_MAX_ACC);
            goto out;
        }
        if (r == 0)
            r = say(&pl->message, "accessory %s recorded (part number %s)", acc, text);
        if (r == 0)
            r = plan_update(st, &c, "accessory", pl);
        goto out;
    }
    /* Issue 11: several lines and nothing listed tells them apart: the model does. */
    int line = 0;
    if (has_rma && !st->open_line
        && (r = units_line_by_model(st->db, st->open_rma, text, &line)) != -ENOENT) {
        if (r == 0 && (r = say(&pl->message, "line %d (%s) of %s", line, text, st->open_rma)) == 0
            && (r = plan_update(st, &c, "text", pl)) == 0)
            pl->line = line;
        goto out;
    }
    r = 0;
    if (c.serial) {
        r = reject(pl, "text",
                   "not expected now: the serial is already recorded (%s) and this is not an "
                   "accessory part number of this product", c.serial);
        goto out;
    }
    if (strlen(text) > STATION_SERIAL_MAX) {
        r = reject(pl, "serial", "too long for a serial number (%zu bytes, at most %d)",
                   strlen(text), STATION_SERIAL_MAX);
        goto out;
    }
    if ((r = set_serial(st, &c, text, pl)) == 1) {
        r = 0;   /* rejected: a double receipt */
        goto out;
    }
    if (r == 0 && (r = serial_message(&c, pl)) == 0)
        r = plan_update(st, &c, "serial", pl);
out:
    checklist_free(&c);
    return r;
}

/* Classification, in the contract's order (spec station, "What a scan means"). */
static int plan_scan(station_t *st, const scan_t *scan, plan_t *pl)
{
    scancmd_t cmd;
    const char *why = NULL;
    /* The current set's own findings are commands too (issue 13: vocabulary). */
    int r = scancmd_parse_in(scan->text, *st->policies, &cmd, &why);

    /* Every scan, rejected ones too, is filed under the open receipt: its history. */
    pl->receipt_id = st->open_id;
    if (r < 0)   /* a command prefix with a bad word, e.g. FIND-BANANA */
        return reject(pl, "command", "%s", why ? why : "invalid command barcode");
    if (r == 1)
        return plan_command(st, &cmd, scan->text, pl);
    /* rmad's own label barcodes, before RMA numbers: a label is never anything else. */
    int64_t label;
    if (labelcode_parse(scan->text, &label) == 1)
        return plan_label(st, label, pl);
    if (regexec(&st->rma_re, scan->text, 0, NULL, 0) == 0)
        return plan_rma(st, scan->text, pl);
    if (scan->gs1)
        return plan_gs1(st, scan, pl);
    return plan_text(st, scan->text, pl);
}

/* ------------------------------------------------------------ transactions ------ */


/*
 * Spec station, "a disposition label prints at the station's printer" (and "a refusal
 * label"): queued in the transaction that closes the receipt, so a committed receipt
 * always has its label coming, across crashes and printer faults.
 */
static int queue_label(station_t *st, plan_t *pl, int64_t now_ms)
{
    int64_t receipt = pl->receipt_id;
    db_print_why_t why;

    if (!st->printer)
        return 0;
    if (pl->transition == STATION_RECEIPT_COMPLETED)
        why = DB_PRINT_DISPOSITION;
    else if (pl->transition == STATION_RECEIPT_REFUSED)
        why = DB_PRINT_REFUSAL;
    else if (pl->reprint)
        why = DB_PRINT_REPRINT, receipt = st->last_label;
    else
        return 0;
    int r = db_print_enqueue(st->db, receipt, st->name, st->printer, why, now_ms, NULL);
    if (r == 0)
        pl->label_queued = true;
    return r;
}

/*
 * What the worker is told (docs/station.md, "Replies"): what the scan did, the
 * receipt open after it, and what to scan next. Needs the inserted receipt's id.
 */
static int plan_words(station_t *st, plan_t *pl)
{
    int64_t id = 0;
    const char *rma = NULL, *cl = NULL;
    char *msg = NULL, *sw = NULL;
    int r = 0, line = 0;

    if (pl->transition == STATION_RECEIPT_OPENED) {
        id = pl->receipt_id;
        rma = pl->rma;
        cl = pl->checklist;
        line = pl->line;
    } else if (pl->transition == STATION_RECEIPT_NONE) {
        id = st->open_id;
        rma = st->open_rma;
        cl = pl->update ? pl->checklist : st->open_checklist;
        line = pl->line ? pl->line : st->open_line;
    }
    r = pl->next_fixed ? say(&pl->next, "%s", pl->next_fixed)
                       : next_for_state(st, id, rma, line, cl, &pl->next);
    if (r < 0)
        return r;
    if (pl->cancel_id && say(&sw, "receipt %lld (%s) cancelled, switched to %s: ",
                             (long long)pl->cancel_id, pl->cancel_rma ? pl->cancel_rma : "no RMA",
                             pl->rma) < 0)
        return -ENOMEM;
    if (!pl->accepted)
        r = say(&msg, "%s", pl->reason);
    else if (pl->transition == STATION_RECEIPT_OPENED)
        r = say(&msg, "%sreceipt %lld opened %s", sw ? sw : "", (long long)pl->receipt_id,
                pl->message ? pl->message : "");
    else if (pl->transition == STATION_RECEIPT_REFUSED)
        r = say(&msg, "%s%s refused: %s", sw ? sw : "", pl->rma, pl->reason);
    else
        r = say(&msg, "%s", pl->message ? pl->message : "recorded");
    free(sw);
    if (r == 0) {
        free(pl->message);
        pl->message = msg;
        r = compose_reply(msg, id, rma, pl->next, &pl->reply);
    } else {
        free(msg);
    }
    return r;
}

/* A switch (second RMA): the receipt it leaves is cancelled, before the new one opens. */
static int write_switch(station_t *st, plan_t *pl, int64_t now_ms)
{
    char *why = NULL;
    if (say(&why, "cancelled at the station: switched to %s by scanning it", pl->rma) < 0)
        return -ENOMEM;
    db_receipt_t row = { .id = pl->cancel_id, .state = DB_RECEIPT_CANCELLED, .closed_at = now_ms,
                         .line = st->open_line, .checklist = st->open_checklist, .reason = why };
    int r = db_receipt_update(st->db, &row);
    free(why);
    return r;
}

static int append_switch_event(station_t *st, plan_t *pl, int64_t now_ms, outbox_t *ob)
{
    json_t *f = station_ev_cancelled(pl->cancel_rma, pl->rma);
    if (!f)
        return -ENOMEM;
    int r = outbox_append(ob, st->db, "receipt.cancelled", f, st->name, pl->cancel_id, now_ms);
    json_decref(f);
    return r;
}

/* Write the plan: receipt row, scan row, RMA status, label, events. Inside the transaction. */
static int write_plan(station_t *st, plan_t *pl, const db_scan_t *scan_row, int64_t now_ms,
                      outbox_t *ob)
{
    db_t *db = st->db;
    int r;

    if (pl->cancel_id && (r = write_switch(st, pl, now_ms)) < 0)
        return r;
    if (pl->insert) {
        db_receipt_t row = {
            .station = st->name, .rma = pl->rma, .line = pl->line, .state = pl->state,
            .opened_at = now_ms, .closed_at = now_ms, .checklist = pl->checklist,
            .reason = (char *)pl->row_reason,
        };
        if ((r = db_receipt_insert(db, &row, &pl->receipt_id)) < 0)
            return r;
    }
    db_scan_t s = *scan_row;
    s.kind = pl->kind;
    s.accepted = pl->accepted;
    s.reason = pl->accepted ? NULL : pl->reason;
    s.receipt_id = pl->receipt_id;
    if ((r = db_scan_insert(db, &s, NULL)) < 0)
        return r;
    if (pl->update) {
        db_receipt_t row = {
            .id = pl->receipt_id, .state = pl->state, .closed_at = now_ms, .serial = pl->serial,
            .line = pl->line ? pl->line : st->open_line,
            .checklist = pl->checklist, .result = pl->result,
            .policy_sha256 = pl->policy_sha256, .policy_version = pl->policy_version,
            .disposition = (char *)pl->disposition,
            .reason = (char *)pl->row_reason,
        };
        if ((r = db_receipt_update(db, &row)) < 0)
            return r;
    }
    if (pl->mark_received && (r = db_rma_mark_received(db, pl->mark_received)) < 0)
        return r;
    if ((r = queue_label(st, pl, now_ms)) < 0)
        return r;
    if ((r = plan_words(st, pl)) < 0)
        return r;

    json_t *f = station_ev_scan(s.scanner, s.kind, s.symbology, s.text, s.reason,
                            pl->accepted ? pl->message : NULL, pl->next);
    if (!f)
        return -ENOMEM;
    r = outbox_append(ob, db, pl->accepted ? "scan.accepted" : "scan.rejected", f, st->name,
                      pl->receipt_id, now_ms);
    json_decref(f);
    if (r < 0)
        return r;
    if (pl->cancel_id && (r = append_switch_event(st, pl, now_ms, ob)) < 0)
        return r;
    if (pl->topic)
        r = outbox_append(ob, db, pl->topic, pl->fields, st->name, pl->receipt_id, now_ms);
    if (r == 0 && pl->received_fields)
        r = outbox_append(ob, db, "rma.received", pl->received_fields, st->name, pl->receipt_id,
                          now_ms);
    return r;
}

/* After the commit: the station takes the state the database now has. */
static void adopt(station_t *st, plan_t *pl)
{
    free(st->switched_rma);
    st->switched_rma = NULL;
    free(st->out_rma);
    st->out_rma = NULL;
    /* The RMA the outcome names: the receipt's before it closes (the logs say it). */
    if (pl->transition == STATION_RECEIPT_OPENED || pl->transition == STATION_RECEIPT_REFUSED)
        (void)dup_or_null(pl->rma, &st->out_rma);
    else
        (void)dup_or_null(st->open_rma, &st->out_rma);
    if (pl->cancel_id) {
        st->switched_rma = pl->cancel_rma;
        pl->cancel_rma = NULL;
        clear_open(st);
    }
    if (pl->label_receipt)
        st->last_label = pl->label_receipt;
    switch (pl->transition) {
    case STATION_RECEIPT_OPENED:
        clear_open(st);
        st->open_id = pl->receipt_id;
        st->open_line = pl->line;
        st->open_rma = pl->rma;
        st->open_checklist = pl->checklist;
        pl->rma = pl->checklist = NULL;
        break;
    case STATION_RECEIPT_CANCELLED:
        clear_open(st);
        break;
    case STATION_RECEIPT_COMPLETED:
        clear_open(st);
        st->last_label = pl->receipt_id;
        break;
    case STATION_RECEIPT_REFUSED:
        st->last_label = pl->receipt_id;
        break;
    case STATION_RECEIPT_NONE:
        if (pl->update && pl->line)
            st->open_line = pl->line;
        if (pl->update) {
            free(st->open_checklist);
            free(st->open_serial);
            st->open_checklist = pl->checklist;
            st->open_serial = pl->serial;
            pl->checklist = pl->serial = NULL;
        }
        break;
    }
    st->n_scans++;
    if (!pl->accepted)
        st->n_rejected++;
    free(st->reason);
    st->reason = pl->reason;
    pl->reason = NULL;
    free(st->reply);
    st->reply = pl->reply;
    pl->reply = NULL;
    free(st->next);
    st->next = pl->next;
    pl->next = NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * The database is the one truth of the station's open receipt (issue 11): read it in
 * the scan's transaction and, should it differ from what the station holds (nothing
 * else writes a station's receipts, so it never should), take the database's. The
 * memory is a cache the plan reads; a failure fails the scan, and the next scan reads
 * again.
 */
static int reload_open(station_t *st)
{
    db_receipt_t r;
    int rc = db_receipt_get_open(st->db, st->name, &r);

    if (rc == -ENOENT) {
        if (st->open_id)
            clear_open(st);
        return 0;
    }
    if (rc < 0)
        return rc;
    bool same = r.id == st->open_id && r.line == st->open_line && same_text(r.rma, st->open_rma)
                && (same_text(r.checklist, st->open_checklist) || !r.checklist);
    db_receipt_clear(&r);
    if (same)
        return 0;
    clear_open(st);
    return resume(st, NULL);
}

static bool time_ok(int64_t now_ms)
{
    return now_ms > 0 && now_ms <= EVENT_TIME_MAX_MS;
}

/* A double read: stores nothing, but the worker still hears that the scan was heard. */
static int answer_double(station_t *st, station_outcome_t *out)
{
    char *next = NULL, *reply = NULL;
    int r = next_for_state(st, st->open_id, st->open_rma, st->open_line, st->open_checklist,
                           &next);
    if (r == 0)
        r = compose_reply("double read ignored (the same barcode again at once)", st->open_id,
                          st->open_rma, next, &reply);
    if (r < 0) {
        free(next);
        return r;
    }
    free(st->next);
    free(st->reply);
    free(st->out_rma);
    st->next = next;
    st->reply = reply;
    st->out_rma = NULL;
    (void)dup_or_null(st->open_rma, &st->out_rma);
    st->n_double++;
    *out = (station_outcome_t){ .scan = STATION_SCAN_DOUBLE_READ, .receipt_id = st->open_id,
                                .reply = st->reply, .next = st->next, .rma = st->out_rma };
    return 0;
}

/* Write a plan inside the caller's transaction; nothing in memory changes yet. */
static int stage(station_t *st, const scan_t *scan, const db_scan_t *row, struct plan *sp,
                 int64_t now_ms, outbox_t *ob)
{
    int r = db_in_transaction(st->db) ? 0 : -EINVAL;
    if (r == 0 && scan && (r = reload_open(st)) == 0)
        r = plan_scan(st, scan, &sp->p);
    if (r == 0)
        r = write_plan(st, &sp->p, row, now_ms, ob);
    if (r < 0) {
        plan_free(&sp->p);
        free(sp);
        return r;
    }
    st->staged = sp;
    st->staged_scan = scan;
    return 0;
}

int station_stage_scan(station_t *st, const scan_t *scan, int64_t now_ms, outbox_t *ob,
                       station_outcome_t *out)
{
    if (!scan || !scan->text || !time_ok(now_ms) || st->staged)
        return -EINVAL;
    if (is_double_read(st, scan)) {
        int r = answer_double(st, out);
        return r < 0 ? r : 1;
    }
    db_scan_t row = {
        .at = now_ms, .station = st->name, .scanner = scanner_of(scan),
        .symbology = scan->aim[0] ? scan->aim : NULL, .raw = scan->raw,
        .raw_len = scan->raw_len, .text = scan->text,
    };
    struct plan *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    return stage(st, scan, &row, sp, now_ms, ob);
}

int station_stage_rejected(station_t *st, const char *scanner_id, const void *raw,
                           size_t raw_len, const char *reason, int64_t now_ms, outbox_t *ob)
{
    if ((!raw && raw_len) || !time_ok(now_ms) || st->staged)
        return -EINVAL;
    db_scan_t row = {
        .at = now_ms, .station = st->name,
        .scanner = scanner_id && *scanner_id ? scanner_id : "unknown",
        .raw = raw, .raw_len = raw_len,
    };
    struct plan *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    sp->p.kind = "invalid";
    sp->p.receipt_id = st->open_id;
    if (!(sp->p.reason = strdup(reason && *reason ? reason : "rejected by the scanner driver"))) {
        free(sp);
        return -ENOMEM;
    }
    return stage(st, NULL, &row, sp, now_ms, ob);
}

bool station_has_staged(const station_t *st)
{
    return st->staged != NULL;
}

void station_end_staged(station_t *st, int rc, station_outcome_t *out)
{
    struct plan *sp = st->staged;
    const scan_t *scan = st->staged_scan;
    if (!sp)
        return;
    st->staged = NULL;
    st->staged_scan = NULL;
    plan_t *pl = &sp->p;
    if (rc < 0) {
        /* Not stored: the station stays as it was, and the same read may come again. */
        if (scan)
            forget_read(st, scan);
        plan_free(pl);
        free(sp);
        return;
    }
    if (scan)
        remember_read(st, scan);
    adopt(st, pl);
    if (out && scan)
        *out = (station_outcome_t){
            .scan = pl->accepted ? STATION_SCAN_ACCEPTED : STATION_SCAN_REJECTED,
            .receipt = pl->transition,
            .receipt_id = pl->reprint ? st->last_label : pl->receipt_id,
            .kind = pl->kind,
            .reason = st->reason,
            .disposition = pl->disposition,
            .serial_mismatch = pl->serial_mismatch,
            .reprint_requested = pl->reprint,
            .label_queued = pl->label_queued,
            .reply = st->reply,
            .next = st->next,
            .rma = st->out_rma,
            .switched_from = pl->cancel_id,
            .switched_from_rma = st->switched_rma,
        };
    else if (out)
        *out = (station_outcome_t){ .scan = STATION_SCAN_REJECTED, .receipt_id = pl->receipt_id,
                                    .kind = "invalid", .reason = st->reason,
                                    .reply = st->reply, .next = st->next, .rma = st->out_rma };
    plan_free(pl);
    free(sp);
}

/* One read in a transaction of its own, already staged (or not: staged < 0): commit, adopt. */
static int commit_one(station_t *st, int staged, outbox_t *ob, station_outcome_t *out)
{
    if (staged < 0) {
        (void)db_rollback(st->db);
        outbox_discard(ob);
        return staged;
    }
    int r = db_commit(st->db);   /* rolls back itself when it fails */
    if (r < 0)
        outbox_discard(ob);
    station_end_staged(st, r, out);
    return r;
}

int station_apply_scan(station_t *st, const scan_t *scan, int64_t now_ms, outbox_t *ob,
                       station_outcome_t *out)
{
    if (!scan || !scan->text || !time_ok(now_ms) || outbox_pending(ob) != 0)
        return -EINVAL;
    if (is_double_read(st, scan))
        return answer_double(st, out);
    int r = db_begin(st->db);
    if (r < 0)
        return r;
    return commit_one(st, station_stage_scan(st, scan, now_ms, ob, out), ob, out);
}

int station_record_rejected(station_t *st, const char *scanner_id, const void *raw,
                            size_t raw_len, const char *reason, int64_t now_ms, outbox_t *ob,
                            station_outcome_t *out)
{
    if ((!raw && raw_len) || !time_ok(now_ms) || outbox_pending(ob) != 0)
        return -EINVAL;
    int r = db_begin(st->db);
    if (r < 0)
        return r;
    return commit_one(st, station_stage_rejected(st, scanner_id, raw, raw_len, reason, now_ms,
                                                 ob), ob, out);
}
