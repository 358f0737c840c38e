/*
 * The station's events, shaped (spec events, docs/station.md "Events"): the fields of
 * every topic a station publishes, built from what the database holds, in one place.
 * The station decides; this module only says how a decision reads on the bus, so a
 * screen that rebuilds a view from the database (a snapshot at seq N) and one that
 * follows the events after N see the same words. Each function returns a new object
 * (the caller owns it) or NULL when out of memory; strings may be NULL where noted.
 */
#ifndef RMAD_STATION_EVENTS_H
#define RMAD_STATION_EVENTS_H

#include <jansson.h>

#include "daemon/checklist.h"
#include "db/db.h"

/* scan.accepted / scan.rejected: aim, text, reason, message, next may be NULL. */
json_t *station_ev_scan(const char *scanner, const char *kind, const char *aim, const char *text,
                        const char *reason, const char *message, const char *next);

/* receipt.opened: number NULL for CMD-NORMA; model and line only once the unit's line
 * is known (line 0: null). */
json_t *station_ev_opened(const char *number, const char *vendor, const char *model, int line);

/* receipt.refused: rma NULL for an unknown RMA (progress null). */
json_t *station_ev_refused(const char *number, const char *reason, const db_rma_t *rma);

/* receipt.cancelled: number NULL for CMD-NORMA; switched_to NULL unless a switch. */
json_t *station_ev_cancelled(const char *number, const char *switched_to);

/*
 * inspection.completed, without the policy result (the caller merges it): rma is the
 * unit's line (NULL for CMD-NORMA), received the RMA's units after this one,
 * serial_match 1/0/-1.
 */
json_t *station_ev_completed(const char *number, const db_rma_t *rma, int received,
                             const char *serial, int serial_match, const checklist_t *c,
                             const char *const *missing, size_t n_missing);

/* rma.received: the RMA's last authorised unit is in. */
json_t *station_ev_rma_received(const db_rma_t *rma);

#endif
