/*
 * Command barcodes: the fixed words a dock worker scans from the station's command
 * sheet (spec station, "Command barcodes"). Classification tries them first, before
 * RMA numbers, GS1 strings and serials.
 *
 * scancmd_table() is the one list of every barcode and its meaning; the printable
 * command sheet and the documentation are generated from it.
 */
#ifndef RMAD_SCANCMD_H
#define RMAD_SCANCMD_H

#include <stddef.h>

#include "policy/findings.h"
#include "policy/policyset.h"

typedef enum {
    SCANCMD_PKG_ORIGINAL,     /* PKG-ORIGINAL */
    SCANCMD_PKG_REPLACEMENT,  /* PKG-REPLACEMENT */
    SCANCMD_PKG_NONE,         /* PKG-NONE */
    SCANCMD_FOAM_MISSING,     /* FOAM-MISSING */
    SCANCMD_SEAL_BROKEN,      /* SEAL-BROKEN */
    SCANCMD_SEAL_INTACT,      /* SEAL-INTACT */
    SCANCMD_PKG_UNMARKED,     /* PKG-UNMARKED */
    SCANCMD_SERIAL_DAMAGED,   /* SERIAL-DAMAGED */
    SCANCMD_SERIAL_REMOVED,   /* SERIAL-REMOVED */
    SCANCMD_ACC,              /* ACC-<name>: scancmd_t.name */
    SCANCMD_ACC_ALL,          /* ACC-ALL: every accessory expected is present */
    SCANCMD_ACC_NONE,         /* ACC-NONE: no (further) accessory is present */
    SCANCMD_FIND,             /* FIND-<finding>: scancmd_t.finding */
    SCANCMD_FAULT_CONFIRMED,  /* FAULT-CONFIRMED */
    SCANCMD_FAULT_NFF,        /* FAULT-NFF: no fault found */
    SCANCMD_FAULT_DOA,        /* FAULT-DOA: dead on arrival */
    SCANCMD_FAULT_UNTESTED,   /* FAULT-UNTESTED: not tested at the dock */
    SCANCMD_CMP,              /* CMP-<component>: scancmd_t.name */
    SCANCMD_DONE,             /* CMD-DONE */
    SCANCMD_CANCEL,           /* CMD-CANCEL */
    SCANCMD_REPRINT,          /* CMD-REPRINT */
    SCANCMD_NORMA,            /* CMD-NORMA */
} scancmd_kind_t;

/* Longest accessory or component name. */
#define SCANCMD_NAME_MAX 32

typedef struct {
    scancmd_kind_t kind;
    finding_t finding;                 /* SCANCMD_FIND: a built-in finding, or
                                          FINDING__COUNT for a policy's own (name) */
    char name[SCANCMD_NAME_MAX + 1];   /* SCANCMD_ACC, SCANCMD_CMP, a policy's own
                                          finding: lowercase; else "" */
} scancmd_t;

/*
 * Classify one scan's text (NUL-terminated, as scan_t.text). Case-insensitive.
 *
 * Returns 1 and fills *out when text is a command; 0 when it does not start with a
 * command prefix (PKG- FOAM- SEAL- SERIAL- ACC- FIND- FAULT- CMP- CMD-), so it is
 * something else (RMA, GS1, serial); -EINVAL with reason when it has a command prefix
 * but is not a valid command: "unknown finding \"BANANA\"", "ACC- without a name",
 * "unknown command \"PKG-FOO\" (PKG-ORIGINAL, PKG-REPLACEMENT, ...)".
 *
 * ACC-ALL and ACC-NONE are their own commands, not accessories named "all", "none".
 * ACC-<name> and CMP-<component>: the name is lowercased and must be 1..32 characters
 * of [a-z0-9_-]. FIND-<finding>: a finding of policy/findings.h, contract spelling.
 * Nothing is trimmed: "CMD-DONE " is an unknown command.
 *
 * reason is a literal or a per-thread buffer valid until the next scancmd_parse() on
 * the thread; not freed by the caller. *out is set only when 1 is returned.
 */
int scancmd_parse(const char *text, scancmd_t *out, const char **reason);

/*
 * The same with the findings the policies of `set` declare (docs/policy.md,
 * "Vocabulary"): FIND-<NAME> of one of them is SCANCMD_FIND with finding
 * FINDING__COUNT and name lowercased. set NULL: scancmd_parse.
 */
int scancmd_parse_in(const char *text, const policyset_t *set, scancmd_t *out,
                     const char **reason);

/* One printable command barcode. */
typedef struct {
    const char *barcode;  /* the exact text to encode: "FIND-COSMETIC_DAMAGE" */
    const char *section;  /* the command sheet's heading: "Packaging", "Findings", ... */
    const char *meaning;  /* one line for the dock worker */
    scancmd_kind_t kind;
} scancmd_info_t;

/*
 * Every concrete command barcode, in command-sheet order: each fixed command, every
 * FIND-<finding>, the common components (CMP-BATTERY, CMP-ELECTRICAL, CMP-MECHANICAL,
 * CMP-LAMP), ACC-ALL and ACC-NONE; accessories by name are on each vendor's
 * accessory sheet (cli/sheet_acc.h). Sets *n to the number of rows.
 * Static storage. Every row's barcode parses to its kind.
 */
const scancmd_info_t *scancmd_table(size_t *n);

#endif
