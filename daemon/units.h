/*
 * Units of an RMA with lines (issue 11): which line a unit at the dock is, and how
 * far the RMA is. The station's repository layer for lines: every answer is read
 * from the database, the single source of truth, in the caller's transaction; the
 * station keeps nothing of it but the open receipt's line.
 */
#ifndef RMAD_UNITS_H
#define RMAD_UNITS_H

#include <stdint.h>

#include "db/db.h"

/*
 * The line a receipt opened for RMA `number` is on: the only line with units still
 * to come. 0 and *line = 0 when several lines have room (the serial or the model
 * tells); -ENOSPC when none has (every unit in); -ENOENT unknown RMA.
 */
int units_line_at_open(db_t *db, const char *number, int *line);

/* What a serial read at the dock says about its unit. */
typedef struct {
    int line;            /* the unit's line (open_line, or the one the serial picks); 0: not known */
    int match;           /* 1 the line lists it, 0 mismatch (quarantine), -1 nothing to compare */
    int listed_on;       /* the line that lists the serial, 0 when none */
    int64_t received_in; /* the completed receipt that already has this serial; 0 when none */
} units_serial_t;

/*
 * For a unit of RMA `number` whose line is open_line (0: not known yet), read
 * `serial`. A serial listed on a line with room picks that line; one listed on
 * another line than the unit's, or on no line when the unit's line lists serials,
 * is a mismatch; an unlisted serial takes the one unlisted line with room. Returns 0
 * and fills *out, or a negative errno.
 */
int units_for_serial(db_t *db, const char *number, int open_line, const char *serial,
                     units_serial_t *out);

/* The line with room whose model is `text` (case-insensitive), for a unit whose line
 * is not known: 0 and *line, or -ENOENT. */
int units_line_by_model(db_t *db, const char *number, const char *text, int *line);

/* "EZN268 (line 1), ENVR8304D (line 2)": the lines with room, for the worker. malloc'd. */
char *units_lines_with_room(db_t *db, const char *number);

/*
 * The expected serial the policy case gets for this unit, so that the policy's own
 * serial check decides as for a one-line RMA: the serial itself on a match, "" when
 * there is nothing to compare, else what was expected (the line's list, or where the
 * serial belongs). Written to out (cap bytes).
 */
void units_case_expected(const db_rma_t *line_row, const units_serial_t *u, const char *serial,
                         char *out, size_t cap);

#endif
