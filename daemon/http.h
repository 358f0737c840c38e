/*
 * http: rmad's web server (docs/web.md), libmicrohttpd driven by the daemon's loop.
 *
 * libmicrohttpd runs in external-polling mode with epoll: its epoll fd is one more fd
 * of the loop, MHD_run() runs when that fd is readable and on a loop timer set from
 * MHD_get_timeout(). Every request is therefore handled on the loop thread, between
 * two scans, and may read the database directly; nothing here ever blocks: sockets are
 * non-blocking, a response that cannot be sent waits in libmicrohttpd's buffers.
 *
 * This module owns the transport: listening, the caps (connections, per-IP
 * connections, header memory, request bodies, idle time), the supervisor password
 * (HTTP Basic) and the CSRF token of POST requests, the security headers of every
 * response (a Content-Security-Policy without inline script), the pages and static
 * files of web_root, and the event stream /api/events (Server-Sent Events). Every other
 * /api/ request is handed to the caller's http_api_fn (daemon/web_api.c).
 *
 * Event stream: each client has a bounded buffer. The daemon hands every committed
 * event to http_publish(); a client that is caught up gets it appended, a client that
 * is behind (it reconnected with Last-Event-ID, or asked ?from=N) is refilled from the
 * outbox (db_outbox_foreach) as its buffer drains, so it sees every event exactly once,
 * in seq order. A client whose buffer would overflow is dropped: its browser
 * reconnects with Last-Event-ID and catches up from the outbox. A stream that has
 * nothing to send is suspended, and resumed when there is.
 *
 * The module never logs; http_stats() counts what happened.
 */
#ifndef RMAD_HTTP_H
#define RMAD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/loop.h"
#include "db/db.h"

#define HTTP_CONN_MAX        64          /* connections at once, all clients */
#define HTTP_CONN_PER_IP     48          /* connections at once from one address */
#define HTTP_CONN_MEMORY     (32 * 1024) /* per connection: request line and headers */
#define HTTP_BODY_MAX        4096        /* bytes of a request body (POSTs carry none) */
#define HTTP_IDLE_S          60          /* an idle connection is closed after this */
#define HTTP_FILE_MAX        (1u << 20)  /* largest static file served */
#define HTTP_SSE_BUF_MAX     (256 * 1024) /* bytes queued per event-stream client */
#define HTTP_SSE_KEEPALIVE_MS 15000      /* a comment line this often keeps proxies open
                                          * and finds clients that left */
#define HTTP_SSE_RETRY_MS    1000        /* the reconnect delay the browser is told */

typedef struct http http_t;

/* One /api/ request as the handler sees it. */
typedef struct {
    const char *method;     /* "GET" or "POST" */
    const char *path;       /* "/api/receipts/12", without the query */
    bool supervisor;        /* the supervisor password was given, or none is set */
    void *conn;             /* for http_arg */
    void *ctx;              /* for http_later */
} http_request_t;

/* Query argument `key` of req, or NULL. Valid during the handler's call. */
const char *http_arg(const http_request_t *req, const char *key);

/* The handler's answer: status, a static content type, and a malloc'd body it gives up. */
typedef struct {
    int status;
    const char *type;
    uint8_t *body;
    size_t len;
} http_reply_t;

/*
 * Answer one /api/ request (GET, or a POST that passed the password and CSRF checks).
 * It must fill rep (a body of NULL/0 is sent empty), or call http_later and leave rep
 * alone.
 */
typedef void (*http_api_fn)(const http_request_t *req, http_reply_t *rep, void *data);

/*
 * An answer that takes time off the loop (a label rendered on a worker thread): the
 * handler takes a ticket and returns at once; the connection waits, suspended, and
 * costs the loop nothing. The ticket must be answered exactly once with
 * http_later_reply, on the loop thread, while the server lives. NULL when out of memory
 * (the handler then fills rep as usual).
 */
typedef struct http_later http_later_t;

http_later_t *http_later(const http_request_t *req);

/* Send the answer of a ticket (rep's body is taken) and forget the ticket. */
void http_later_reply(http_later_t *later, http_reply_t *rep);

/*
 * Listen on cfg's http address and serve cfg's web_root, handing /api/ requests to fn.
 * loop, db and cfg are borrowed and must outlive the server. Reads the supervisor
 * password from http_password_file when set. Returns NULL with *errmsg (malloc'd) set,
 * e.g. "http 127.0.0.1:7780: Address already in use".
 */
http_t *http_new(loop_t *loop, db_t *db, const config_t *cfg, http_api_fn fn, void *data,
                 char **errmsg);

/* Close every connection and stop. NULL is fine; clears *h. */
void http_destroy(http_t **h);

/*
 * A committed event (call after db_commit, in seq order, the same text the outbox
 * stored): queue it for every event-stream client. Never blocks.
 */
void http_publish(http_t *h, uint64_t seq, const char *topic, const char *body, size_t len);

/* "http://127.0.0.1:7780/": what `make run` prints. Owned by the server. */
const char *http_url(const http_t *h);

typedef struct {
    uint64_t requests;        /* requests answered */
    uint64_t refused;         /* of which refused: password, CSRF, body too large */
    size_t streams;           /* event-stream clients connected now */
    uint64_t streams_dropped; /* clients dropped for a full buffer */
} http_stats_t;

http_stats_t http_stats(const http_t *h);

#endif
