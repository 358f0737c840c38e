/*
 * The web server (daemon/http.c) on a real loop and socket: the loop serves on a
 * second thread (th_serve_start) while this thread is the browser, speaking HTTP/1.1
 * over plain sockets. Pages, static files and traversal, security headers, CSRF, the
 * caps on bodies and headers, and the event stream: replay from the outbox, resume at
 * Last-Event-ID, live events, and a client that stops reading is dropped, never
 * waited for.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "daemon/http.h"
#include "core/loop.h"
#include "db/db.h"
#include "tests/helpers.h"
#include "tests/suites.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t n = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int port;

static int dial_rcvbuf(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    /* Before connect: the window the peer sees is set at the handshake. */
    if (fd >= 0 && rcvbuf > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static int dial(void)
{
    return dial_rcvbuf(0);
}

/* Read from fd until `until` appears, the peer closes, or 5 s pass. malloc'd text. */
static char *read_until(int fd, const char *until)
{
    size_t cap = 1 << 16, n = 0;
    char *b = calloc(1, cap + 1);
    int64_t end = loop_now_ms() + 5000;
    while (b && loop_now_ms() < end && n < cap && !(until && strstr(b, until))) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, b + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        b[n] = '\0';
    }
    return b;
}

/* One request on a new connection; the whole answer (the server closes after it). */
static char *request(const char *req)
{
    int fd = dial();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT((size_t)write(fd, req, strlen(req)) == strlen(req));
    char *out = read_until(fd, NULL);
    close(fd);
    return out;
}

static void api(const http_request_t *req, http_reply_t *rep, void *data)
{
    (void)data;
    char *b = NULL;
    if (asprintf(&b, "{\"method\":\"%s\",\"path\":\"%s\"}", req->method, req->path) < 0)
        b = NULL;
    rep->status = 200;
    rep->type = "application/json";
    rep->body = (uint8_t *)b;
    rep->len = b ? strlen(b) : 0;
}

static http_t *srv;
static char live_body[8192];

/* On the loop thread, 300 ms in: event 4, live, to whoever is caught up. */
static int64_t publish_live(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    (void)data;
    static const char b[] = "{\"v\":1,\"seq\":4,\"type\":\"x.live\"}";
    http_publish(srv, 4, "x.live", b, strlen(b));
    return -1;
}

/* Later: 1000 events of 8 KiB, 10 every 20 ms, for a reader that never reads. */
static int64_t publish_flood(loop_t *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    (void)data;
    static uint64_t seq = 5;
    for (int i = 0; i < 10 && seq < 1005; i++, seq++)
        http_publish(srv, seq, "x.flood", live_body, strlen(live_body));
    return seq < 1005 ? 20 : -1;
}

static void test_http_server(void)
{
    char *dir = th_mkdtemp();
    char path[4200], text[8192], *err = NULL;
    CU_ASSERT_FATAL(dir != NULL);
    snprintf(path, sizeof(path), "%s/index.html", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "<!DOCTYPE html><title>stations</title>"), 0);
    snprintf(path, sizeof(path), "%s/app.css", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "body{}"), 0);
    snprintf(path, sizeof(path), "%s/secret.txt", dir);
    CU_ASSERT_EQUAL(th_write_file(path, "not served"), 0);

    snprintf(path, sizeof(path), "%s/rmad.db", dir);
    db_t *db = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(path, &db, &err), 0);
    CU_ASSERT_EQUAL(db_begin(db), 0);
    for (int i = 1; i <= 3; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"v\":1,\"seq\":%d,\"type\":\"x.stored\"}", i);
        CU_ASSERT_EQUAL(db_outbox_insert(db, (uint64_t)i, "x.stored", body), 0);
    }
    CU_ASSERT_EQUAL(db_commit(db), 0);

    port = free_port();
    snprintf(text, sizeof(text),
             "[daemon]\ndatabase = db\npolicies = p\npub = tcp://127.0.0.1:1\n"
             "replay = tcp://127.0.0.1:2\ncontrol = ipc://c\nhttp = 127.0.0.1:%d\n"
             "web_root = %s\n[station dock1]\nscanner = tcp:127.0.0.1:3\n", port, dir);
    config_t *cfg = NULL;
    CU_ASSERT_EQUAL_FATAL(config_parse(text, strlen(text), "t", dir, &cfg, &err), 0);
    loop_t *loop = loop_new();
    CU_ASSERT_FATAL(loop != NULL);
    srv = http_new(loop, db, cfg, api, NULL, &err);
    if (!srv)
        fprintf(stderr, "\n  http_new: %s\n", err ? err : "?");
    CU_ASSERT_FATAL(srv != NULL);
    ASSERT_CONTAINS(http_url(srv), "http://127.0.0.1:");
    /* A second server on the same port says why it cannot listen. */
    http_t *again = http_new(loop, db, cfg, api, NULL, &err);
    CU_ASSERT_PTR_NULL(again);
    ASSERT_CONTAINS(err, "Address already in use");
    free(err);
    err = NULL;
    memset(live_body, 'a', sizeof(live_body) - 1);
    memcpy(live_body, "{\"x\":\"", 6);
    memcpy(live_body + sizeof(live_body) - 3, "\"}", 3);
    (void)loop_add_timer(loop, 1500, publish_live, NULL);
    (void)loop_add_timer(loop, 2500, publish_flood, NULL);

    th_serve_t serve = { 0 };
    th_serve_start(&serve, loop);

    /* Pages, files, headers. */
    char *r = request("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "HTTP/1.1 200");
    ASSERT_CONTAINS(r, "<title>stations</title>");
    ASSERT_CONTAINS(r, "Content-Security-Policy: default-src 'none'; script-src 'self'");
    ASSERT_CONTAINS(r, "X-Content-Type-Options: nosniff");
    free(r);
    r = request("GET /static/app.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "Content-Type: text/css");
    free(r);
    static const char *const refused[] = { "/static/secret.txt", "/static/../rmad.db",
                                           "/static/%2e%2e/rmad.db", "/static/.app.css",
                                           "/nowhere" };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 refused[i]);
        r = request(text);
        ASSERT_CONTAINS(r, "HTTP/1.1 404");
        free(r);
    }
    r = request("GET / HTTP/1.1\r\nHost: evil.example:7780\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "HTTP/1.1 403");   /* DNS rebinding: not our name */
    free(r);
    r = request("GET / HTTP/1.1\r\nHost: localhost:7780\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "HTTP/1.1 200");
    free(r);
    r = request("DELETE /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "HTTP/1.1 405");
    free(r);

    /* The API, and POST: token required, cross-site refused, bodies capped. */
    r = request("GET /api/thing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "{\"method\":\"GET\",\"path\":\"/api/thing\"}");
    free(r);
    r = request("POST /api/act HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    ASSERT_CONTAINS(r, "HTTP/1.1 403");
    free(r);
    r = request("GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    char *tok = strstr(r, "\"csrf\":\"");
    CU_ASSERT_FATAL(tok != NULL);
    char csrf[65] = { 0 };
    memcpy(csrf, tok + 8, 64);
    free(r);
    snprintf(text, sizeof(text), "POST /api/act HTTP/1.1\r\nHost: 127.0.0.1\r\nX-CSRF-Token: %s\r\n"
             "Connection: close\r\n\r\n", csrf);
    r = request(text);
    ASSERT_CONTAINS(r, "{\"method\":\"POST\",\"path\":\"/api/act\"}");
    free(r);
    snprintf(text, sizeof(text), "POST /api/act HTTP/1.1\r\nHost: 127.0.0.1\r\nX-CSRF-Token: %s\r\n"
             "Origin: http://evil.example\r\nConnection: close\r\n\r\n", csrf);
    r = request(text);
    ASSERT_CONTAINS(r, "HTTP/1.1 403");
    free(r);
    snprintf(text, sizeof(text), "POST /api/act HTTP/1.1\r\nHost: 127.0.0.1\r\nX-CSRF-Token: %s\r\n"
             "Content-Length: 6000\r\nConnection: close\r\n\r\n", csrf);
    r = request(text);
    ASSERT_CONTAINS(r, "HTTP/1.1 413");
    free(r);
    /* Headers beyond the connection's memory: refused, the server goes on. */
    char *huge = malloc(HTTP_CONN_MEMORY + 200);
    CU_ASSERT_FATAL(huge != NULL);
    int n = snprintf(huge, 64, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    memset(huge + n, 'b', HTTP_CONN_MEMORY);
    strcpy(huge + n + HTTP_CONN_MEMORY, "\r\n\r\n");
    r = request(huge);
    CU_ASSERT(strstr(r, "HTTP/1.1 200") == NULL);
    free(r);
    free(huge);

    /* The stream: stored events from ?from=, resumed after Last-Event-ID. */
    int fd = dial();
    const char *q = "GET /api/events?from=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    CU_ASSERT((size_t)write(fd, q, strlen(q)) == strlen(q));
    r = read_until(fd, "id: 3\n");
    ASSERT_CONTAINS(r, "Content-Type: text/event-stream");
    ASSERT_CONTAINS(r, "retry: 1000\n");
    CU_ASSERT(strstr(r, "id: 1\n") == NULL);
    ASSERT_CONTAINS(r, "id: 2\ndata: {\"v\":1,\"seq\":2,\"type\":\"x.stored\"}\n\n");
    ASSERT_CONTAINS(r, "id: 3\n");
    free(r);
    close(fd);
    fd = dial();
    q = "GET /api/events?from=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 2\r\n\r\n";
    CU_ASSERT((size_t)write(fd, q, strlen(q)) == strlen(q));
    r = read_until(fd, "id: 3\n");
    CU_ASSERT(strstr(r, "id: 2\n") == NULL);
    ASSERT_CONTAINS(r, "id: 3\n");
    free(r);
    /* Caught up: the live event 4 comes as it is published. */
    r = read_until(fd, "id: 4\n");
    ASSERT_CONTAINS(r, "id: 4\ndata: {\"v\":1,\"seq\":4,\"type\":\"x.live\"}\n\n");
    free(r);

    /* A reader that never reads: dropped once its buffer is full; the other one
     * (fd) still gets every event. */
    int stuck = dial_rcvbuf(2048);
    q = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    CU_ASSERT((size_t)write(stuck, q, strlen(q)) == strlen(q));
    size_t got = 0;
    int64_t end = loop_now_ms() + 10000;
    char last[32] = "";
    while (loop_now_ms() < end) {   /* 3.2 MB: read it off, keep the tail */
        char buf[65536];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        if (k <= 0)
            break;
        buf[k] = '\0';
        got += (size_t)k;
        if (strstr(buf, "id: 1004\n")) {
            strcpy(last, "id: 1004");
            break;
        }
    }
    ASSERT_STR(last, "id: 1004");
    CU_ASSERT(got > 1000 * 8000);
    close(fd);
    close(stuck);
    th_serve_stop(&serve);

    http_stats_t st = http_stats(srv);
    CU_ASSERT(st.streams_dropped >= 1);
    CU_ASSERT(st.refused >= 4);
    http_destroy(&srv);
    CU_ASSERT_PTR_NULL(srv);
    http_destroy(NULL);
    loop_destroy(&loop);
    config_destroy(&cfg);
    db_close(&db);
    th_rm_rf(dir);
    free(dir);
}

int suite_http(void)
{
    CU_pSuite s = CU_add_suite("http", NULL, NULL);
    if (!s || !CU_add_test(s, "pages, headers, CSRF, caps, event stream", test_http_server))
        return -1;
    return 0;
}
