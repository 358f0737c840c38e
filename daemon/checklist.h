/*
 * The checklist of a station's open receipt (spec station, "Receipt workflow" steps
 * 2-3): what the dock recorded about the unit, its stored JSON form, the policy case
 * it makes with the RMA, and what the unit still needs before CMD-DONE
 * (docs/station.md, "The checklist"). Internal to the stations (daemon/station.c);
 * kept apart so the workflow there reads as the workflow.
 *
 * Functions returning int give 0 or a negative errno; malloc'd results are the
 * caller's.
 */
#ifndef RMAD_CHECKLIST_H
#define RMAD_CHECKLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/caldate.h"
#include "policy/policy.h"
#include "db/db.h"

/* Distinct accessories one receipt records: ACC-<name> takes any name, so bound it. */
#define CHECKLIST_MAX_ACC 64
/* A policy's own findings one receipt records (FIND-<NAME> of its vocabulary). */
#define CHECKLIST_MAX_XFIND 16

/*
 * What the dock recorded about the open receipt's unit (spec station, "Receipt
 * workflow" steps 2-3). Defaults are the contract's unremarkable state.
 */
typedef struct {
    char *serial;                 /* NULL until read */
    int serial_match;             /* 1 match, 0 mismatch, -1 unknown */
    serial_label_t serial_label;
    bool rma_marked;
    packaging_t packaging;
    bool foam;
    seal_t seal;
    char *acc[CHECKLIST_MAX_ACC]; /* accessories present, in scan order, distinct */
    size_t n_acc;
    uint32_t findings;            /* bit (1u << finding_t) */
    char *xfind[CHECKLIST_MAX_XFIND]; /* policies' own findings, lowercase, scan order */
    size_t n_xfind;
    fault_t fault;
    char *component;              /* NULL: the whole unit */
    char *gtin;                   /* (01) of a GS1 scan, NULL when none */
    unsigned answered;            /* POLICY_ITEM_* the worker answered by a scan */
} checklist_t;

/* What the open unit still needs (checklist_needs). */
typedef struct {
    bool serial;              /* the serial is still to be scanned */
    unsigned items;           /* POLICY_ITEM_* still to answer, each deciding the outcome */
    const char **missing;     /* expected accessories not scanned (the policy's strings) */
    size_t n_missing;
} checklist_needs_t;

/* Defaults: nothing read, nothing answered (serial_match -1, label intact, ...). */
void checklist_init(checklist_t *c);
/* Free what c owns and set it to the defaults again. */
void checklist_free(checklist_t *c);

/* The stored form, and as text (checklist_dump of it). NULL when out of memory. */
json_t *checklist_json(const checklist_t *c);
char *checklist_text(const checklist_t *c);

/*
 * Parse a stored checklist (checklist_json's form; a closed receipt's also has
 * accessories_missing). Anything else is -EBADMSG: a receipt resumed from a checklist
 * we do not understand would be decided on a guess.
 */
int checklist_parse(const char *text, checklist_t *out);

bool checklist_has_acc(const checklist_t *c, const char *name);
/* Add accessory name (once): 0, 1 when CHECKLIST_MAX_ACC are recorded, -ENOMEM. */
int checklist_add_acc(checklist_t *c, const char *name);

/*
 * The policy case (spec policy-eval) from the RMA row, the checklist, the accessories
 * missing and the receiving date: the JSON `rmactl policy eval` reads, for the same
 * case_from_json(). NULL when out of memory.
 */
json_t *checklist_case(const db_rma_t *rma, const checklist_t *c, const char *const *missing,
                       size_t n_missing, caldate_t today);

/*
 * What the unit needs before CMD-DONE with policy pol and RMA rma (either NULL: only
 * the serial is asked). Fills *n; checklist_needs_free() it, also after a failure.
 * checklist_missing() fills only n->missing: the accessories pol expects for the
 * product that c does not have.
 */
int checklist_needs(const policy_t *pol, const checklist_t *c, const db_rma_t *rma,
                    checklist_needs_t *n);
int checklist_missing(const policy_t *pol, const db_rma_t *rma, const checklist_t *c,
                      checklist_needs_t *n);
void checklist_needs_free(checklist_needs_t *n);

/*
 * The first item n still asks for: "the accessories (power-adapter, remote)"; with
 * how, "answer ...: BARCODES; then the seal". checklist_next(): what to scan next on
 * an open receipt with needs n (the serial, that, or CMD-DONE). *out malloc'd (freed
 * first by checklist_next).
 */
int checklist_item_text(const checklist_needs_t *n, bool how, char **out);
int checklist_next(const checklist_needs_t *n, char **out);

/* "a, b, c" of n names into f. */
void checklist_put_names(FILE *f, const char *const *names, size_t n);

/* JSON values shared with the station's events: a string or null; 1/0/-1 as
 * true/false/null; names as an array; finding bits as names. NULL when out of memory. */
json_t *checklist_jstr(const char *s);
json_t *checklist_jtristate(int v);
json_t *checklist_jnames(const char *const *names, size_t n);
json_t *checklist_jfindings(uint32_t bits);
/* Every finding of c: the built-in ones, then the policies' own. */
json_t *checklist_jfindings_of(const checklist_t *c);
/* Add a policy's own finding (once): 0, 1 when CHECKLIST_MAX_XFIND are recorded, -ENOMEM. */
int checklist_add_xfind(checklist_t *c, const char *name);
/* Compact, in insertion order; NULL for NULL or when out of memory. */
char *checklist_dump(json_t *j);

#endif
