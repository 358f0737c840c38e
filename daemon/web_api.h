/*
 * web_api: the JSON behind the web pages (docs/web.md), for the pages and for a WMS.
 *
 * Answers the /api/ requests daemon/http.c hands over: status, a station's screen
 * state, receipts (search, one receipt with its scans, decision, events and labels, its
 * label as PNG), the print queue, screen barcodes, and the supervisor's actions
 * (reprint, cancel). Reads the database directly (it runs on the loop thread, like
 * everything that touches it); only the drawing of label PNGs runs on a worker thread
 * of its own, so a supervisor's page never holds up a scan. What the daemon already answers over the control
 * socket (status, labels, reprint, labels_cancel) is not done twice: the daemon
 * registers the same control functions here, so `rmactl` and the web say the same.
 *
 * Every string in a reply is JSON-escaped by jansson; the pages only ever put them in
 * the DOM as text.
 */
#ifndef RMAD_WEB_API_H
#define RMAD_WEB_API_H

#include <stddef.h>

#include "core/config.h"
#include "daemon/control.h"
#include "daemon/http.h"
#include "core/loop.h"
#include "policy/policyset.h"
#include "db/db.h"

typedef struct web_api web_api_t;

#define WEB_API_PAGE_MAX   200   /* receipts per page at most */
#define WEB_API_SCANS_MAX  1000  /* scans shown for one receipt */
#define WEB_API_EVENTS_MAX 1000  /* events shown for one receipt */
#define WEB_API_LABEL_CACHE 8    /* label PNGs kept: a closed receipt's label never changes */
#define WEB_API_RENDER_MAX  16   /* label PNGs waiting for the worker at once */

/*
 * loop, db, cfg and *policies_ref are borrowed and outlive the api. Starts the thread
 * that renders label PNGs (label_render is pure; the database stays on the loop).
 * NULL when out of memory or no thread could be started.
 */
web_api_t *web_api_new(loop_t *loop, db_t *db, const config_t *cfg, policyset_t **policies_ref);

/*
 * Stop the worker and free everything. Call after http_destroy: labels still being
 * drawn are dropped unanswered (their requests ended with the server). NULL is fine.
 */
void web_api_destroy(web_api_t **api);

/*
 * Answer `cmd` ("status", "labels", "reprint", "labels_cancel") with the daemon's
 * control function. Returns 0, -EINVAL for another name.
 */
int web_api_register(web_api_t *api, const char *cmd, control_fn fn, void *data);

/* A committed event: the last scan of each station is kept for its screen. */
void web_api_note_event(web_api_t *api, const char *topic, const char *body, size_t len);

/* The http_api_fn: data is the web_api_t. */
void web_api_handle(const http_request_t *req, http_reply_t *rep, void *data);

#endif
