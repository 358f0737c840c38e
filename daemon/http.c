/* The web server: libmicrohttpd on the loop, pages, static files, the event stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/http.h"
#include "core/msgf.h"

#define PASSWORD_MAX 1024
#define SSE_BATCH    200     /* events read from the outbox per refill */

/*
 * Scripts and styles come from web_root only: a string that slipped into a page as
 * markup still could not run. Images: our own PNGs. connect-src: the event stream.
 */
static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

typedef struct sse sse_t;

struct sse {
    http_t *h;
    struct MHD_Connection *conn;
    char *station;          /* only this station's events (and those of none); NULL: all */
    uint64_t next_seq;      /* the next event this client needs */
    char *buf;              /* bytes to send: buf[off..len) */
    size_t off, len, cap;
    bool suspended;
    bool dead;              /* dropped: the next read ends the stream */
    sse_t *prev, *next;
};

struct http {
    loop_t *loop;
    db_t *db;
    const config_t *cfg;
    http_api_fn fn;
    void *data;
    struct MHD_Daemon *mhd;
    int epfd;
    uint64_t timer;         /* MHD's next timeout, 0 when none is set */
    uint64_t keepalive;
    char *password;         /* NULL: none set (loopback only) */
    char csrf[65];
    char *url;
    uint64_t last_seq;      /* the last event published (or stored at start) */
    sse_t *clients;
    struct req_ctx *later;  /* requests waiting for a later answer */
    http_stats_t stats;
};

/*
 * Per request: how much body came, so a large upload is refused early; and, for an
 * answer given later (http_later), the answer once it is there. The ticket is the
 * request's context itself: a suspended connection cannot end, so it lives until the
 * answer was sent.
 */
typedef struct req_ctx {
    size_t body;
    http_t *h;
    struct MHD_Connection *conn;
    bool deferred;          /* waiting for http_later_reply, suspended */
    bool ready;             /* the answer is in rep */
    http_reply_t rep;
    struct req_ctx *prev, *next;   /* in http_t.later while deferred */
} req_ctx_t;

struct http_later {
    req_ctx_t ctx;
};

/* ---- the loop ------------------------------------------------------------------- */

static void run_mhd(http_t *h);

static int64_t timer_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    http_t *h = data;
    h->timer = 0;
    run_mhd(h);
    return -1;
}

/* MHD_run, then arm the timer MHD asks for (timeouts, resumed connections). */
static void run_mhd(http_t *h)
{
    (void)MHD_run(h->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (h->timer)
        (void)loop_del_timer(h->loop, h->timer);
    h->timer = 0;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        h->timer = loop_add_timer(h->loop, ms > 60000 ? 60000 : (int64_t)ms, timer_cb, h);
}

static void epoll_cb(loop_t *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_mhd(data);
}

/* A resumed connection is only served by the next MHD_run: have one soon. */
static void run_soon(http_t *h)
{
    if (h->timer)
        (void)loop_del_timer(h->loop, h->timer);
    h->timer = loop_add_timer(h->loop, 0, timer_cb, h);
}

/* ---- responses ------------------------------------------------------------------ */

static void add_headers(struct MHD_Response *r, const char *type, bool cache)
{
    (void)MHD_add_response_header(r, "Content-Type", type);
    (void)MHD_add_response_header(r, "Content-Security-Policy", csp);
    (void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    (void)MHD_add_response_header(r, "X-Frame-Options", "DENY");
    (void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    (void)MHD_add_response_header(r, "Cache-Control", cache ? "max-age=60" : "no-store");
}

/* Queue body (malloc'd, taken; NULL for none) with status and type. */
static enum MHD_Result reply(http_t *h, struct MHD_Connection *c, int status,
                             const char *type, void *body, size_t len, bool cache)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (void *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    add_headers(r, type, cache);
    h->stats.requests++;
    if (status >= 400 && status != 404)
        h->stats.refused++;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A short plain-text error: never HTML, so nothing in it can be markup. */
static enum MHD_Result reply_error(http_t *h, struct MHD_Connection *c, int status,
                                   const char *msg)
{
    char *b = NULL;
    if (asprintf(&b, "%s\n", msg) < 0)
        b = NULL;
    return reply(h, c, status, "text/plain; charset=utf-8", b, b ? strlen(b) : 0, false);
}

static enum MHD_Result reply_auth(http_t *h, struct MHD_Connection *c)
{
    static const char msg[] = "the supervisor password is needed\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    add_headers(r, "text/plain; charset=utf-8", false);
    h->stats.requests++;
    h->stats.refused++;
    enum MHD_Result ok = MHD_queue_basic_auth_fail_response(c, "rmad supervisor", r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- static files --------------------------------------------------------------- */

static const struct {
    const char *ext, *type;
} types[] = {
    { ".html", "text/html; charset=utf-8" },     { ".css", "text/css; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" }, { ".png", "image/png" },
    { ".svg", "image/svg+xml" },                 { ".wav", "audio/wav" },
    { ".ico", "image/x-icon" },
};

/* A flat file name of web_root: letters, digits, '-', '_', one '.', a known type. */
static const char *file_type(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != n)
        return NULL;
    const char *dot = strchr(name, '.');
    if (!dot || strchr(dot + 1, '.'))
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static enum MHD_Result serve_file(http_t *h, struct MHD_Connection *c, const char *name)
{
    const char *type = file_type(name);
    if (!type)
        return reply_error(h, c, 404, "not found");
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", h->cfg->web_root, name) >= sizeof(path))
        return reply_error(h, c, 404, "not found");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > HTTP_FILE_MAX) {
        if (fd >= 0)
            (void)close(fd);
        return reply_error(h, c, 404, "not found");
    }
    size_t len = (size_t)sb.st_size, got = 0;
    char *b = malloc(len ? len : 1);
    while (b && got < len) {
        ssize_t n = read(fd, b + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    (void)close(fd);
    if (!b || got != len) {
        free(b);
        return reply_error(h, c, 500, "cannot read the file");
    }
    return reply(h, c, 200, type, b, len, true);
}

/* ---- the event stream ----------------------------------------------------------- */

static int sse_reserve(sse_t *s, size_t more)
{
    if (s->off > 0 && s->off == s->len)
        s->off = s->len = 0;
    if (s->len + more <= s->cap)
        return 0;
    if (s->off > 0) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
        if (s->len + more <= s->cap)
            return 0;
    }
    if (s->len + more > HTTP_SSE_BUF_MAX)
        return -ENOBUFS;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + more)
        cap *= 2;
    if (cap > HTTP_SSE_BUF_MAX)
        cap = HTTP_SSE_BUF_MAX;
    char *b = realloc(s->buf, cap);
    if (!b)
        return -ENOMEM;
    s->buf = b;
    s->cap = cap;
    return 0;
}

static int sse_append(sse_t *s, const char *text, size_t n)
{
    int rc = sse_reserve(s, n);
    if (rc == 0) {
        memcpy(s->buf + s->len, text, n);
        s->len += n;
    }
    return rc;
}

/* The event's station, if any, from its envelope: the stream's filter. */
static bool event_for(const sse_t *s, const char *body, size_t len)
{
    if (!s->station)
        return true;
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "station"));
    bool yes = !st || strcmp(st, s->station) == 0;
    json_decref(j);
    return yes;
}

/*
 * One event in SSE framing. The body is compact JSON (control characters escaped),
 * so it is one data: line; id: is its seq, which the browser sends back as
 * Last-Event-ID when it reconnects. No event: line: a browser delivers named events
 * only to listeners of that name, so a page would silently miss every type added
 * after it was written; the type is in the body.
 */
static int sse_event(sse_t *s, uint64_t seq, const char *topic, const char *body, size_t len)
{
    if (!event_for(s, body, len)) {
        s->next_seq = seq + 1;
        return 0;
    }
    char head[160];
    (void)topic;
    int n = snprintf(head, sizeof(head), "id: %llu\ndata: ", (unsigned long long)seq);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    int rc = sse_reserve(s, (size_t)n + len + 2);
    if (rc < 0)
        return rc;
    (void)sse_append(s, head, (size_t)n);
    (void)sse_append(s, body, len);
    (void)sse_append(s, "\n\n", 2);
    s->next_seq = seq + 1;
    return 0;
}

static int refill_one(const db_event_t *ev, void *data)
{
    sse_t *s = data;
    int rc = sse_event(s, ev->seq, ev->topic, ev->body, ev->body_len);
    if (rc == -ENOBUFS)
        return 1;   /* full: the rest when it drained */
    if (rc < 0)
        return rc;
    return s->len - s->off >= HTTP_SSE_BUF_MAX / 2 ? 1 : 0;
}

/* A client behind the live stream: read its next events from the outbox. */
static void sse_refill(sse_t *s)
{
    http_t *h = s->h;
    if (s->next_seq > h->last_seq)
        return;
    int rc = db_outbox_foreach(h->db, s->next_seq, SSE_BATCH, refill_one, s);
    if (rc < 0)
        s->dead = true;   /* the browser reconnects and tries again */
}

static void sse_wake(sse_t *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
        run_soon(s->h);
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_t *s = cls;
    if (s->dead)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->off == s->len)
        sse_refill(s);
    if (s->dead)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->off == s->len) {
        /* Nothing to send: out of MHD's loop until an event or a keepalive. */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        return 0;
    }
    size_t n = s->len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse_t *s = cls;
    http_t *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->clients = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->stats.streams--;
    free(s->station);
    free(s->buf);
    free(s);
}

/* "123" -> 123; anything else (empty, signs, overflow) -> -1. */
static int64_t parse_id(const char *v)
{
    if (!v || !*v || strlen(v) > 18 || strspn(v, "0123456789") != strlen(v))
        return -1;
    return strtoll(v, NULL, 10);
}

/*
 * GET /api/events[?station=NAME][&from=SEQ]: events from Last-Event-ID + 1 (a
 * reconnect), else from SEQ, else from the next event on.
 */
static enum MHD_Result serve_events(http_t *h, struct MHD_Connection *c)
{
    const char *station = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "station");
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
    uint64_t next = h->last_seq + 1;
    int64_t v;
    if (last && (v = parse_id(last)) >= 0)
        next = (uint64_t)v + 1;
    else if (from && (v = parse_id(from)) >= 1)
        next = (uint64_t)v;
    if (next > h->last_seq + 1)
        next = h->last_seq + 1;   /* an id from another database: live from now */

    sse_t *s = calloc(1, sizeof(*s));
    if (!s || (station && *station && !(s->station = strdup(station)))) {
        free(s);
        return reply_error(h, c, 503, "out of memory");
    }
    s->h = h;
    s->conn = c;
    s->next_seq = next;
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "retry: %d\n\n", HTTP_SSE_RETRY_MS);
    (void)sse_append(s, hello, (size_t)n);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, s, sse_free);
    if (!r) {
        free(s->station);
        free(s->buf);
        free(s);
        return MHD_NO;
    }
    s->next = h->clients;
    if (h->clients)
        h->clients->prev = s;
    h->clients = s;
    h->stats.streams++;
    add_headers(r, "text/event-stream; charset=utf-8", false);
    h->stats.requests++;
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

void http_publish(http_t *h, uint64_t seq, const char *topic, const char *body, size_t len)
{
    if (!h)
        return;
    if (seq > h->last_seq)
        h->last_seq = seq;
    for (sse_t *s = h->clients; s; s = s->next) {
        if (s->dead || s->next_seq != seq)
            continue;   /* a client behind refills from the outbox, in order */
        int rc = sse_event(s, seq, topic, body, len);
        if (rc < 0) {
            s->dead = true;
            h->stats.streams_dropped++;
        }
        sse_wake(s);
    }
}

static int64_t keepalive_cb(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    http_t *h = data;
    for (sse_t *s = h->clients; s; s = s->next) {
        if (s->off == s->len)
            (void)sse_append(s, ":\n\n", 3);
        sse_wake(s);
    }
    return HTTP_SSE_KEEPALIVE_MS;
}

/* ---- requests ------------------------------------------------------------------- */

/* Constant time in the length of the expected text: a password is not guessed byte by byte. */
static bool same_secret(const char *given, const char *want)
{
    size_t n = strlen(want), m = given ? strlen(given) : 0;
    unsigned char d = n != m;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)want[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return d == 0;
}

static bool is_supervisor(http_t *h, struct MHD_Connection *c)
{
    if (!h->password)
        return true;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    bool ok = user && pass && same_secret(pass, h->password);
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

/*
 * Without a password the server is on loopback only, and the one way in from outside
 * is a web page whose name was rebound to 127.0.0.1 (DNS rebinding): such a request
 * names that site in Host. Only loopback names are accepted then.
 */
static bool host_ok(http_t *h, struct MHD_Connection *c)
{
    if (h->password)
        return true;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host)
        return false;
    size_t n = strcspn(host, host[0] == '[' ? "]" : ":");
    if (host[0] == '[')
        return strncmp(host, "[::1]", 5) == 0;
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == n);
}

/* What a station's screen needs, which works without the supervisor password. */
static bool station_route(struct MHD_Connection *c, const char *url)
{
    if (strncmp(url, "/station/", 9) == 0 || strncmp(url, "/static/", 8) == 0 ||
        strncmp(url, "/api/stations/", 14) == 0 || strcmp(url, "/api/barcode") == 0 ||
        strcmp(url, "/api/session") == 0)
        return true;
    const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "station");
    return strcmp(url, "/api/events") == 0 && st && *st;
}

/* A POST must carry the token of /api/session, and come from our own pages. */
static bool csrf_ok(http_t *h, struct MHD_Connection *c)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
    if (!tok || !same_secret(tok, h->csrf))
        return false;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!origin)
        return true;   /* not a browser's cross-site request: those always say Origin */
    return host && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

static enum MHD_Result serve_session(http_t *h, struct MHD_Connection *c, bool supervisor)
{
    json_t *j = json_pack("{s:s, s:b, s:b}", "csrf", h->csrf, "password", h->password != NULL,
                          "supervisor", supervisor);
    char *b = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!b)
        return reply_error(h, c, 503, "out of memory");
    return reply(h, c, 200, "application/json", b, strlen(b), false);
}

static enum MHD_Result serve_api(http_t *h, struct MHD_Connection *c, req_ctx_t *ctx,
                                 const char *method, const char *url, bool supervisor)
{
    http_request_t req = { .method = method, .path = url, .supervisor = supervisor, .conn = c,
                           .ctx = ctx };
    http_reply_t rep = { .status = 500, .type = "text/plain; charset=utf-8" };
    h->fn(&req, &rep, h->data);
    if (ctx->deferred) {
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    return reply(h, c, rep.status, rep.type, rep.body, rep.len, false);
}

http_later_t *http_later(const http_request_t *req)
{
    req_ctx_t *ctx = req->ctx;
    http_t *h = ctx->h;
    ctx->deferred = true;
    ctx->next = h->later;
    if (h->later)
        h->later->prev = ctx;
    h->later = ctx;
    return (http_later_t *)ctx;
}

void http_later_reply(http_later_t *later, http_reply_t *rep)
{
    req_ctx_t *ctx = &later->ctx;
    http_t *h = ctx->h;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        h->later = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    ctx->prev = ctx->next = NULL;
    ctx->rep = *rep;
    ctx->ready = true;
    /* The access handler runs again on resume and sends it. */
    MHD_resume_connection(ctx->conn);
    run_soon(h);
}

const char *http_arg(const http_request_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Pages: one file per kind of page; the script reads what to show from the path. */
static const char *page_for(const char *url)
{
    if (strcmp(url, "/") == 0)
        return "index.html";
    if (strncmp(url, "/station/", 9) == 0 && url[9] && !strchr(url + 9, '/'))
        return "station.html";
    if (strcmp(url, "/receipts") == 0)
        return "receipts.html";
    if (strncmp(url, "/receipts/", 10) == 0 && parse_id(url + 10) > 0)
        return "receipt.html";
    if (strcmp(url, "/labels") == 0)
        return "labels.html";
    return NULL;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    http_t *h = cls;
    req_ctx_t *ctx = *req_cls;
    if (!ctx) {
        /* Headers only so far: answer on the next call, once any body has come. */
        if (!(ctx = calloc(1, sizeof(*ctx))))
            return MHD_NO;
        ctx->h = h;
        ctx->conn = c;
        *req_cls = ctx;
        /* A declared body over the cap is refused before a byte of it is read. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > HTTP_BODY_MAX)) {
            ctx->body = HTTP_BODY_MAX + 1;
            return reply_error(h, c, 413, "request body too large");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        ctx->body += *upload_size;
        *upload_size = 0;
        if (ctx->body > HTTP_BODY_MAX)
            return reply_error(h, c, 413, "request body too large");
        return MHD_YES;
    }
    if (ctx->body > HTTP_BODY_MAX)
        return MHD_YES;   /* answered already */
    if (ctx->deferred) {
        if (!ctx->ready)
            return MHD_YES;
        ctx->deferred = false;
        http_reply_t *r = &ctx->rep;
        return reply(h, c, r->status, r->type, r->body, r->len, false);
    }

    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (!get && !post)
        return reply_error(h, c, 405, "method not allowed");
    if (!host_ok(h, c))
        return reply_error(h, c, 403, "Host must name the loopback address (no password set)");
    bool supervisor = is_supervisor(h, c);
    if (!supervisor && (post || !station_route(c, url)))
        return reply_auth(h, c);
    if (post) {
        if (strncmp(url, "/api/", 5) != 0)
            return reply_error(h, c, 405, "method not allowed");
        if (!csrf_ok(h, c))
            return reply_error(h, c, 403, "missing or wrong X-CSRF-Token (see GET /api/session)");
        return serve_api(h, c, ctx, "POST", url, supervisor);
    }
    const char *page = page_for(url);
    if (page)
        return serve_file(h, c, page);
    if (strncmp(url, "/static/", 8) == 0)
        return serve_file(h, c, url + 8);
    if (strcmp(url, "/api/events") == 0)
        return serve_events(h, c);
    if (strcmp(url, "/api/session") == 0)
        return serve_session(h, c, supervisor);
    if (strncmp(url, "/api/", 5) == 0)
        return serve_api(h, c, ctx, "GET", url, supervisor);
    return reply_error(h, c, 404, "not found");
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    req_ctx_t *ctx = *req_cls;
    if (ctx && ctx->deferred && ctx->ready)
        free(ctx->rep.body);   /* answered, but the connection went first */
    free(ctx);
    *req_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

static int read_password(const char *path, char **out, char **errmsg)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        msgf_set(errmsg, "http_password_file %s: %s", path, strerror(e));
        return -e;
    }
    char buf[PASSWORD_MAX + 2];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (n > PASSWORD_MAX || !buf[0]) {
        msgf_set(errmsg, "http_password_file %s: expected one line of 1 to %d bytes", path,
                 PASSWORD_MAX);
        return -EINVAL;
    }
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? 0 : -ENOMEM;
}

/* Our own listening socket, so that a failure says why (EADDRINUSE...). */
static int listen_on(const config_t *cfg, char **errmsg)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)cfg->http_port);
    int rc = getaddrinfo(cfg->http_host, port, &hints, &ai);
    if (rc != 0) {
        msgf_set(errmsg, "http %s:%s: %s", cfg->http_host, port, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        if (fd >= 0)
            (void)close(fd);
        freeaddrinfo(ai);
        msgf_set(errmsg, "http %s:%s: %s", cfg->http_host, port, strerror(e));
        return -e;
    }
    freeaddrinfo(ai);
    return fd;
}

http_t *http_new(loop_t *loop, db_t *db, const config_t *cfg, http_api_fn fn, void *data,
                 char **errmsg)
{
    http_t *h = calloc(1, sizeof(*h));
    int fd = -1;
    if (!h) {
        msgf_set(errmsg, "http: out of memory");
        return NULL;
    }
    h->loop = loop;
    h->db = db;
    h->cfg = cfg;
    h->fn = fn;
    h->data = data;
    h->epfd = -1;
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        msgf_set(errmsg, "http: no random bytes for the CSRF token: %s", strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(h->csrf + 2 * i, 3, "%02x", rnd[i]);
    if (cfg->http_password_file && read_password(cfg->http_password_file, &h->password, errmsg) < 0)
        goto fail;
    if (db_outbox_last_seq(db, &h->last_seq) < 0) {
        msgf_set(errmsg, "http: %s", db_errmsg(db));
        goto fail;
    }
    if ((fd = listen_on(cfg, errmsg)) < 0)
        goto fail;
    bool v6 = strchr(cfg->http_host, ':') != NULL;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        access_cb, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_CONN_PER_IP,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h, MHD_OPTION_END);
    if (!h->mhd) {
        (void)close(fd);
        msgf_set(errmsg, "http: libmicrohttpd did not start");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    h->epfd = info ? info->epoll_fd : -1;
    int rc = h->epfd >= 0 ? loop_add_fd(loop, h->epfd, LOOP_IN, epoll_cb, h) : -EIO;
    if (rc < 0) {
        h->epfd = -1;
        msgf_set(errmsg, "http: cannot watch libmicrohttpd's epoll fd: %s", strerror(-rc));
        goto fail;
    }
    if (!(h->keepalive = loop_add_timer(loop, HTTP_SSE_KEEPALIVE_MS, keepalive_cb, h))) {
        msgf_set(errmsg, "http: out of memory");
        goto fail;
    }
    bool br = strchr(cfg->http_host, ':') != NULL;
    if (asprintf(&h->url, "http://%s%s%s:%u/", br ? "[" : "", cfg->http_host, br ? "]" : "",
                 (unsigned)cfg->http_port) < 0) {
        h->url = NULL;
        msgf_set(errmsg, "http: out of memory");
        goto fail;
    }
    run_mhd(h);
    return h;
fail:
    http_destroy(&h);
    return NULL;
}

void http_destroy(http_t **hp)
{
    if (!hp || !*hp)
        return;
    http_t *h = *hp;
    if (h->epfd >= 0)
        (void)loop_del_fd(h->loop, h->epfd);
    if (h->mhd) {
        /* Stopping with suspended connections is undefined: end every stream first. */
        for (sse_t *s = h->clients; s; s = s->next) {
            s->dead = true;
            if (s->suspended) {
                s->suspended = false;
                MHD_resume_connection(s->conn);
            }
        }
        /* Requests still waiting for a later answer get a 503 now; their tickets die
         * with the server (the caller stops answering them). */
        while (h->later) {
            http_reply_t busy = { .status = 503, .type = "text/plain; charset=utf-8" };
            http_later_reply((http_later_t *)h->later, &busy);
        }
        (void)MHD_run(h->mhd);
        MHD_stop_daemon(h->mhd);
    }
    if (h->timer)
        (void)loop_del_timer(h->loop, h->timer);
    if (h->keepalive)
        (void)loop_del_timer(h->loop, h->keepalive);
    if (h->password)
        explicit_bzero(h->password, strlen(h->password));
    free(h->password);
    free(h->url);
    free(h);
    *hp = NULL;
}

const char *http_url(const http_t *h)
{
    return h->url;
}

http_stats_t http_stats(const http_t *h)
{
    return h->stats;
}
