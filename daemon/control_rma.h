/*
 * The control commands about whole RMAs: rma.show (lines, expected and received
 * serials, every unit's receipt), rma.list (state, vendor), rma.close (docs/control.md).
 * Part of the control socket: control_new registers them, so only control.c uses
 * this header.
 */
#ifndef RMAD_CONTROL_RMA_H
#define RMAD_CONTROL_RMA_H

#include "daemon/control.h"
#include "db/db.h"

typedef struct control_rma control_rma_t;

/* Register rma.show, rma.list and rma.close on ctl. NULL when out of memory. */
control_rma_t *control_rma_new(control_t *ctl, txn_t *txn);

/* See control_set_rma_expiry. */
void control_rma_set_expiry(control_rma_t *cr, control_rma_expiry_fn fn, void *data);

void control_rma_destroy(control_rma_t **cr_p);

#endif
