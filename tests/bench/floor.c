/*
 * The floor for `make bench` (issue 17): the least a receiving daemon can do per scan
 * on the same wire and the same storage as rmad, so that rmad's numbers are read as
 * ratios to it, measured in the same run on the same machine.
 *
 * Per scan line that arrives on any of its TCP ports it runs one SQLite transaction
 * with rmad's pragmas (WAL, synchronous=FULL, foreign_keys=ON):
 *
 *     BEGIN IMMEDIATE; INSERT INTO scans ...; INSERT INTO outbox ...; COMMIT
 *
 * (one durable commit per scan), then publishes the event on a ZeroMQ PUB socket
 * (topic frame, body frame, as rmad does) and answers the scanner one line. No
 * checklist, no policy, no receipts: what is left of rmad's cost is the wire and one
 * fdatasync per scan. SQLite's default checkpointing (wal_autocheckpoint=1000) runs
 * inside whichever commit crosses it, as it would in a naive daemon.
 *
 * usage: bench_floor DB PUB_ENDPOINT PORT...   (stops on SIGTERM/SIGINT)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_PORTS 256
#define MAX_CONNS 512
#define LINE_MAX_LEN 4096

typedef struct {
    int fd;
    char station[32];
    char buf[LINE_MAX_LEN];
    size_t len;
} conn_t;

static volatile sig_atomic_t stopping;

static void on_signal(int signo)
{
    (void)signo;
    stopping = 1;
}

static sqlite3 *db;
static sqlite3_stmt *st_begin, *st_commit, *st_scan, *st_event;
static void *pub;
static long long seq;

static void die(const char *what)
{
    fprintf(stderr, "bench_floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : strerror(errno));
    exit(1);
}

static void exec_or_die(const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(sql);
}

static void prepare(sqlite3_stmt **st, const char *sql)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        die(sql);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void now_rfc3339(char out[64])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* One scan: one transaction, one commit, then the event and the answer. */
static void handle_line(conn_t *c, const char *line, size_t len)
{
    char at[64], body[LINE_MAX_LEN + 256];
    int n;

    now_rfc3339(at);
    n = snprintf(body, sizeof(body),
                 "{\"v\":1,\"seq\":%lld,\"type\":\"scan.accepted\",\"time\":\"%s\","
                 "\"station\":\"%s\",\"text\":\"%.*s\"}",
                 seq + 1, at, c->station, (int)len, line);
    if (n < 0 || (size_t)n >= sizeof(body))
        return;
    if (step_done(st_begin) < 0)
        die("begin");
    sqlite3_bind_text(st_scan, 1, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st_scan, 2, c->station, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st_scan, 3, line, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_text(st_scan, 4, line, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st_event, 1, seq + 1);
    sqlite3_bind_text(st_event, 2, body, n, SQLITE_TRANSIENT);
    sqlite3_bind_text(st_event, 3, at, -1, SQLITE_TRANSIENT);
    if (step_done(st_scan) < 0 || step_done(st_event) < 0 || step_done(st_commit) < 0)
        die("scan transaction");
    seq++;
    zmq_send(pub, "scan.accepted", strlen("scan.accepted"), ZMQ_SNDMORE);
    zmq_send(pub, body, (size_t)n, 0);
    if (write(c->fd, "OK stored\n", 10) < 0) {
        /* the scanner went away: its close is seen on the next read */
    }
}

static void read_conn(conn_t *c)
{
    ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
    if (got <= 0) {
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->len += (size_t)got;
    size_t start = 0;
    for (size_t i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n')
            continue;
        size_t end = i;
        if (end > start && c->buf[end - 1] == '\r')
            end--;
        if (end > start)
            handle_line(c, c->buf + start, end - start);
        start = i + 1;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
    if (c->len == sizeof(c->buf))
        c->len = 0;   /* an over-long line: dropped, as a scanner driver would */
}

static int listen_on(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        die("socket");
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
        fprintf(stderr, "bench_floor: port %d: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    static conn_t conns[MAX_CONNS];
    int lfd[MAX_PORTS], nports = argc - 3;
    struct pollfd pfd[MAX_PORTS + MAX_CONNS];

    if (argc < 4 || nports > MAX_PORTS) {
        fprintf(stderr, "usage: bench_floor DB PUB_ENDPOINT PORT...\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        die("open");
    sqlite3_busy_timeout(db, 5000);
    exec_or_die("PRAGMA journal_mode=WAL");
    exec_or_die("PRAGMA synchronous=FULL");
    exec_or_die("PRAGMA foreign_keys=ON");
    exec_or_die("CREATE TABLE IF NOT EXISTS scans (id INTEGER PRIMARY KEY, at TEXT NOT NULL,"
                " station TEXT NOT NULL, raw BLOB NOT NULL, text TEXT) STRICT;"
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
                " body TEXT NOT NULL, created_at TEXT NOT NULL) STRICT;");
    prepare(&st_begin, "BEGIN IMMEDIATE");
    prepare(&st_commit, "COMMIT");
    prepare(&st_scan, "INSERT INTO scans (at, station, raw, text) VALUES (?1, ?2, ?3, ?4)");
    prepare(&st_event, "INSERT INTO outbox (seq, topic, body, created_at)"
                       " VALUES (?1, 'scan.accepted', ?2, ?3)");
    {
        sqlite3_stmt *st;
        prepare(&st, "SELECT coalesce(max(seq), 0) FROM outbox");
        if (sqlite3_step(st) == SQLITE_ROW)
            seq = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }

    void *ctx = zmq_ctx_new();
    int linger = 0;
    pub = zmq_socket(ctx, ZMQ_PUB);
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(pub, argv[2]) < 0) {
        fprintf(stderr, "bench_floor: bind %s: %s\n", argv[2], zmq_strerror(errno));
        return 1;
    }
    for (int i = 0; i < nports; i++)
        lfd[i] = listen_on(atoi(argv[3 + i]));
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;

    while (!stopping) {
        int n = 0, map[MAX_CONNS];
        for (int i = 0; i < nports; i++)
            pfd[n++] = (struct pollfd){ .fd = lfd[i], .events = POLLIN };
        int nc = 0;
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0) {
                map[nc++] = i;
                pfd[n++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
            }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (int i = 0; i < nports; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            int fd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC), one = 1;
            if (fd < 0)
                continue;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            for (int k = 0; k < MAX_CONNS; k++)
                if (conns[k].fd < 0) {
                    conns[k].fd = fd;
                    conns[k].len = 0;
                    snprintf(conns[k].station, sizeof(conns[k].station), "s%d", i);
                    fd = -1;
                    break;
                }
            if (fd >= 0)
                close(fd);
        }
        for (int j = 0; j < nc; j++)
            if (pfd[nports + j].revents & (POLLIN | POLLHUP | POLLERR))
                read_conn(&conns[map[j]]);
    }
    sqlite3_finalize(st_begin);
    sqlite3_finalize(st_commit);
    sqlite3_finalize(st_scan);
    sqlite3_finalize(st_event);
    sqlite3_close(db);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return 0;
}
