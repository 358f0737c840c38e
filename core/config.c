/*
 * The daemon's INI configuration (core/config.h).
 *
 * One pass over the lines. Every value is checked where it is read, so the first
 * error in file order is the one reported; what can only be known at the end of a
 * section (a missing key) is checked when the next section starts or at the end of
 * the file. Every address something will bind or open (ZeroMQ endpoints, scanner
 * ports and devices) is remembered, so two of them that would collide at start-up
 * are reported here, with both lines.
 */
#include "core/config.h"
#include "core/build.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES   4096
#define FILE_MAX_BYTES   (1024 * 1024)
#define STATION_NAME_MAX 32
#define USB_SERIAL_MAX   126    /* a USB string descriptor holds 126 UTF-16 units */
#define CUPS_QUEUE_MAX   127
#define QUOTE_MAX        64     /* longest piece of config text quoted in a message */

static const char default_text[] =
    "; rmad default configuration, used by `make run`.\n"
    "; Relative paths are resolved against the repository root.\n"
    "[daemon]\n"
    "database = state/rmad.db\n"
    "policies = policies\n"
    "pub      = tcp://127.0.0.1:7781\n"
    "replay   = tcp://127.0.0.1:7782\n"
    "control  = ipc://state/rmad.ctl\n"
    "; log_level      = info\n"
    "; double_read_ms = 1500\n"
    "; max_scan_len   = 512\n"
    "; rma_pattern    = " CONFIG_DEFAULT_RMA_PATTERN "\n"
    "; heartbeat_ms   = 5000   ; bus.heartbeat on PUB with the last seq; 0: off\n"
    "; print_retry_ms     = 2000\n"
    "; print_retry_max_ms = 60000\n"
    "; timezone       = Europe/Berlin  ; labels show local time; default: the system's\n"
    "http     = 127.0.0.1:7780        ; station screens and supervisor pages (docs/web.md)\n"
    "web_root = web                   ; the pages' files: the repository's web/\n"
    "; http_password_file = /etc/rmad/supervisor.pw  ; required off loopback\n"
    "; control_group = rmad           ; group of the control socket file (mode 0660)\n"
    "; curve_secret_key = /etc/rmad/keys/server.key  ; CURVE, required off loopback\n"
    "; curve_allowed_clients = /etc/rmad/clients     ; every *.pub in it may connect\n"
    "; retain_days = 365              ; delete older scans and events; default: keep all\n"
    "; retain_subscribers = erp       ; keep events these have not acknowledged\n"
    "\n"
    "[station dock1]\n"
    "scanner  = tcp:127.0.0.1:7790   ; type scans with: nc 127.0.0.1 7790\n"
    "printer  = dock1-labels\n"
    "; label_format = zpl            ; zpl (thermal label printer) or pdf\n"
    "; label_size   = 4x6            ; 4x6 or 2x1 inches\n"
    "; label_dpi    = 203            ; 203 or 300 (zpl)\n";

const char *config_default_text(void)
{
    return default_text;
}

int config_load_default(config_t **out, char **errmsg)
{
    return config_parse(default_text, strlen(default_text), "built-in default config",
                        build_source_root(), out, errmsg);
}

/* ---- the parsed result ---------------------------------------------------------- */

static void scanner_clear(config_scanner_t *s)
{
    free(s->spec);
    free(s->host);
    free(s->usb_serial);
    free(s->path);
    free(s->options);
    free(s->allow);
    for (size_t i = 0; i < s->nopts; i++) {
        free(s->opts[i].key);
        free(s->opts[i].value);
    }
    free(s->opts);
}

void config_destroy(config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    config_t *cfg = *cfg_p;
    for (size_t i = 0; i < cfg->nstations; i++) {
        config_station_t *st = &cfg->stations[i];
        for (size_t j = 0; j < st->nscanners; j++)
            scanner_clear(&st->scanners[j]);
        free(st->scanners);
        free(st->name);
        free(st->printer);
    }
    free(cfg->stations);
    free(cfg->source);
    free(cfg->database);
    free(cfg->policies);
    free(cfg->local_policies);
    free(cfg->pub);
    free(cfg->replay);
    free(cfg->control);
    free(cfg->rma_pattern);
    free(cfg->timezone);
    free(cfg->http_host);
    free(cfg->http_password_file);
    free(cfg->web_root);
    free(cfg->control_group);
    free(cfg->curve_secret_key);
    free(cfg->curve_allowed_clients);
    for (size_t i = 0; i < cfg->nretain_subscribers; i++)
        free(cfg->retain_subscribers[i]);
    free(cfg->retain_subscribers);
    if (cfg->forward) {
        config_forward_t *f = cfg->forward;
        for (size_t i = 0; i < f->nservers; i++)
            free(f->servers[i]);
        free(f->servers);
        free(f->site);
        free(f->stream);
        free(f->subject_prefix);
        free(f->creds);
        free(f->nkey);
        free(f->nkey_seed);
        free(f->tls_ca);
        free(f->tls_cert);
        free(f->tls_key);
        free(f->rma_consumer);
        free(f);
    }
    free(cfg);
    *cfg_p = NULL;
}

const char *config_scanner_option(const config_scanner_t *s, const char *key)
{
    if (!s || !key)
        return NULL;
    for (size_t i = 0; i < s->nopts; i++)
        if (strcmp(s->opts[i].key, key) == 0)
            return s->opts[i].value;
    return NULL;
}

/* ---- parser state --------------------------------------------------------------- */

/*
 * Something that is bound or opened at start-up, to find collisions. Hosts are
 * normalised: "*" for any wildcard, inet_ntop form for literals, "localhost".
 */
typedef enum { BIND_TCP, BIND_IPC, BIND_USB, BIND_SERIAL_PATH, BIND_SERIAL_USB } bind_kind_t;

struct bind {
    bind_kind_t kind;
    char *str;          /* tcp host, ipc or serial path, usb serial number (or NULL) */
    uint16_t port, vid, pid;
    int line;
    char *what;         /* "pub 'tcp://...'", "scanner 'tcp:...' of station 'dock1'" */
};

enum daemon_key {
    K_DATABASE, K_POLICIES, K_PUB, K_REPLAY, K_CONTROL,
    K_LOG_LEVEL, K_DOUBLE_READ_MS, K_MAX_SCAN_LEN, K_RMA_PATTERN,
    K_PRINT_RETRY_MS, K_PRINT_RETRY_MAX_MS, K_TIMEZONE,
    K_HTTP, K_HTTP_PASSWORD_FILE, K_WEB_ROOT,
    K_HEARTBEAT_MS,
    K_LOCAL_POLICIES,
    K_CONTROL_GROUP, K_CURVE_SECRET_KEY, K_CURVE_ALLOWED_CLIENTS,
    K_RETAIN_DAYS, K_RETAIN_SUBSCRIBERS,
    K_COUNT
};

static const struct {
    const char *name;
    bool required;
} daemon_keys[K_COUNT] = {
    [K_DATABASE] = { "database", true },
    [K_POLICIES] = { "policies", true },
    [K_PUB] = { "pub", true },
    [K_REPLAY] = { "replay", true },
    [K_CONTROL] = { "control", true },
    [K_LOG_LEVEL] = { "log_level", false },
    [K_DOUBLE_READ_MS] = { "double_read_ms", false },
    [K_MAX_SCAN_LEN] = { "max_scan_len", false },
    [K_RMA_PATTERN] = { "rma_pattern", false },
    [K_PRINT_RETRY_MS] = { "print_retry_ms", false },
    [K_PRINT_RETRY_MAX_MS] = { "print_retry_max_ms", false },
    [K_TIMEZONE] = { "timezone", false },
    [K_HTTP] = { "http", false },
    [K_HTTP_PASSWORD_FILE] = { "http_password_file", false },
    [K_WEB_ROOT] = { "web_root", false },
    [K_HEARTBEAT_MS] = { "heartbeat_ms", false },
    [K_LOCAL_POLICIES] = { "local_policies", false },
    [K_CONTROL_GROUP] = { "control_group", false },
    [K_CURVE_SECRET_KEY] = { "curve_secret_key", false },
    [K_CURVE_ALLOWED_CLIENTS] = { "curve_allowed_clients", false },
    [K_RETAIN_DAYS] = { "retain_days", false },
    [K_RETAIN_SUBSCRIBERS] = { "retain_subscribers", false },
};

enum station_key { SK_SCANNER, SK_PRINTER, SK_LABEL_FORMAT, SK_LABEL_SIZE, SK_LABEL_DPI, SK_COUNT };

static const char *const station_keys[SK_COUNT] = {
    [SK_SCANNER] = "scanner",
    [SK_PRINTER] = "printer",
    [SK_LABEL_FORMAT] = "label_format",
    [SK_LABEL_SIZE] = "label_size",
    [SK_LABEL_DPI] = "label_dpi",
};

enum forward_key {
    FK_NATS, FK_SITE, FK_STREAM, FK_SUBJECT_PREFIX, FK_MAX_INFLIGHT, FK_CREDS, FK_NKEY,
    FK_NKEY_SEED, FK_TLS, FK_TLS_CA, FK_TLS_CERT, FK_TLS_KEY, FK_RMA_FEED, FK_RMA_CONSUMER,
    FK_COUNT
};

static const char *const forward_keys[FK_COUNT] = {
    [FK_NATS] = "nats",
    [FK_SITE] = "site",
    [FK_STREAM] = "stream",
    [FK_SUBJECT_PREFIX] = "subject_prefix",
    [FK_MAX_INFLIGHT] = "max_inflight",
    [FK_CREDS] = "creds",
    [FK_NKEY] = "nkey",
    [FK_NKEY_SEED] = "nkey_seed",
    [FK_TLS] = "tls",
    [FK_TLS_CA] = "tls_ca",
    [FK_TLS_CERT] = "tls_cert",
    [FK_TLS_KEY] = "tls_key",
    [FK_RMA_FEED] = "rma_feed",
    [FK_RMA_CONSUMER] = "rma_consumer",
};

typedef enum { SEC_NONE, SEC_DAEMON, SEC_STATION, SEC_FORWARD } section_t;

struct parser {
    const char *name;
    char *base;             /* absolute directory for relative paths, no trailing '/' */
    config_t *cfg;
    int line;
    char *err;              /* the first error, "NAME:LINE: message" */

    section_t sec;
    int daemon_line;        /* line of [daemon], 0 before it */
    int key_line[K_COUNT];  /* line of each [daemon] key, 0 while unset */
    size_t st;              /* current station (index: cfg->stations may move) */
    int station_key_line[SK_COUNT];  /* line of each key of the current station */
    int forward_key_line[FK_COUNT];  /* line of each [forward] key */

    struct bind *binds;
    size_t nbinds;
    bool off_loopback[K_COUNT];  /* pub/replay: a tcp:// endpoint off loopback */
};

/*
 * Record the first error as "NAME:LINE: message". Returns -EINVAL (-ENOMEM when the
 * message itself cannot be built) so callers can `return fail(...)`.
 */
__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, int line, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    free(p->err);
    p->err = NULL;
    n = asprintf(&p->err, "%s:%d: %s", p->name, line, msg);
    free(msg);
    if (n < 0) {
        p->err = NULL;
        return -ENOMEM;
    }
    return -EINVAL;
}

/*
 * Config text as it may appear inside a one-line message: control bytes become '?',
 * and beyond QUOTE_MAX bytes it is cut (at a UTF-8 boundary) and ends in "...".
 * buf must hold QUOTE_MAX + 4 bytes.
 */
#define QUOTE_BUF (QUOTE_MAX + 4)
static const char *quote(char buf[QUOTE_BUF], const char *s)
{
    size_t n = strlen(s), cut = n;
    if (n > QUOTE_MAX) {
        cut = QUOTE_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    strcpy(buf + cut, cut < n ? "..." : "");
    return buf;
}

/* ---- small value parsers -------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim blanks from both ends, in place. */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Decimal digits only (no sign, no blanks), within [min, max]. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* Exactly four hex digits, as lsusb prints VID and PID. */
static int parse_hex4(const char *s, size_t len, uint16_t *out)
{
    if (len != 4)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -EINVAL;
        v = v * 16 + d;
    }
    *out = (uint16_t)v;
    return 0;
}

/* 1.. characters of [A-Za-z0-9_.-] (a subscriber's name; length checked by the caller). */
static bool station_name_ok_len(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static bool station_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > STATION_NAME_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* CUPS queue names: printable, no space, tab, '/' or '#' (lpadmin's rule). */
static bool cups_queue_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CUPS_QUEUE_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c == 0x7f || *c == '/' || *c == '#')
            return false;
    return true;
}

/*
 * "HOST:PORT" where HOST is an IPv4 literal, localhost, [IPv6 literal] or, when
 * allow_star, "*". On success *shown is the host as written (without brackets) and
 * *norm the same host normalised for comparisons ("*" for every wildcard, inet_ntop's
 * form for literals), both malloc'd. On a bad value *why says what is wrong.
 */
static int parse_hostport(const char *s, bool allow_star, char **shown, char **norm,
                          uint16_t *port, const char **why)
{
    char h[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hlen;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            *why = "expected [IPV6]:PORT";
            return -EINVAL;
        }
        colon = close + 1;
        hlen = (size_t)(close - s - 1);
        s++;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *why = "expected HOST:PORT";
            return -EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    const char *bad_host =
        allow_star ? "bad host (expected an IPv4 address, localhost, [IPv6 address] or *)"
                   : "bad host (expected an IPv4 address, localhost or [IPv6 address])";
    if (hlen == 0 || hlen >= sizeof(h)) {
        *why = bad_host;
        return -EINVAL;
    }
    memcpy(h, s, hlen);
    h[hlen] = '\0';

    uint64_t p = 0;
    int rc = parse_uint(colon + 1, 0, UINT64_MAX, &p);
    if (rc == -EINVAL) {
        *why = "bad port (expected 1 to 65535)";
        return -EINVAL;
    }
    if (rc < 0 || p < 1 || p > 65535) {
        *why = "port out of range";
        return -EINVAL;
    }

    char nbuf[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    static const unsigned char zero[sizeof(struct in6_addr)];
    if (v6) {
        if (inet_pton(AF_INET6, h, addr) != 1) {
            *why = "bad IPv6 address";
            return -EINVAL;
        }
        if (memcmp(addr, zero, sizeof(struct in6_addr)) == 0)
            strcpy(nbuf, "*");
        else
            (void)inet_ntop(AF_INET6, addr, nbuf, sizeof(nbuf));
    } else if (strcasecmp(h, "localhost") == 0) {
        strcpy(nbuf, "localhost");
    } else if (allow_star && strcmp(h, "*") == 0) {
        strcpy(nbuf, "*");
    } else if (inet_pton(AF_INET, h, addr) == 1) {
        if (memcmp(addr, zero, sizeof(struct in_addr)) == 0)
            strcpy(nbuf, "*");
        else
            (void)inet_ntop(AF_INET, addr, nbuf, sizeof(nbuf));
    } else {
        *why = bad_host;
        return -EINVAL;
    }
    char *a = strdup(h), *b = strdup(nbuf);
    if (!a || !b) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    *shown = a;
    *norm = b;
    *port = (uint16_t)p;
    return 0;
}

/* base + "/" + value, unless value is already absolute. */
static char *resolve_path(const struct parser *p, const char *value)
{
    char *out = NULL;
    if (value[0] == '/')
        return strdup(value);
    if (asprintf(&out, "%s/%s", p->base, value) < 0)
        return NULL;
    return out;
}

/* A normalised host (parse_hostport's *norm) that only this machine can reach. */
static bool host_is_loopback(const char *norm)
{
    return strcmp(norm, "::1") == 0 || strcmp(norm, "localhost") == 0 ||
           strncmp(norm, "127.", 4) == 0 || strncmp(norm, "::ffff:127.", 11) == 0;
}

/* ---- collisions ----------------------------------------------------------------- */

static bool tcp_hosts_overlap(const char *a, const char *b)
{
    if (strcmp(a, "*") == 0 || strcmp(b, "*") == 0 || strcmp(a, b) == 0)
        return true;
    /* localhost resolves to both loopback addresses. */
    if (strcmp(b, "localhost") == 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    return strcmp(a, "localhost") == 0 && (strcmp(b, "127.0.0.1") == 0 || strcmp(b, "::1") == 0);
}

static bool binds_overlap(const struct bind *a, const struct bind *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case BIND_TCP:
        return a->port == b->port && tcp_hosts_overlap(a->str, b->str);
    case BIND_IPC:
    case BIND_SERIAL_PATH:
        return strcmp(a->str, b->str) == 0;
    case BIND_USB:
        /* Without a serial number, a VID:PID claims every such device. */
        return a->vid == b->vid && a->pid == b->pid &&
               (!a->str || !b->str || strcmp(a->str, b->str) == 0);
    case BIND_SERIAL_USB:
        return a->vid == b->vid && a->pid == b->pid;
    }
    return false;
}

/*
 * Remember b (taking its strings) after checking it against every earlier one.
 * prefix is how an error on this line starts ("pub '...'" or "station 'x': scanner
 * '...'"). O(n) per call, O(n^2) per file, for a handful of entries.
 */
static int bind_add(struct parser *p, struct bind b, const char *prefix)
{
    int rc = 0;
    for (size_t i = 0; i < p->nbinds; i++) {
        if (binds_overlap(&p->binds[i], &b)) {
            rc = fail(p, p->line, "%s: conflicts with %s (line %d)", prefix, p->binds[i].what,
                      p->binds[i].line);
            goto drop;
        }
    }
    struct bind *nb = realloc(p->binds, (p->nbinds + 1) * sizeof(*nb));
    if (!nb) {
        rc = -ENOMEM;
        goto drop;
    }
    p->binds = nb;
    p->binds[p->nbinds++] = b;
    return 0;

drop:
    free(b.str);
    free(b.what);
    return rc;
}

/* ---- [daemon] ------------------------------------------------------------------- */

/*
 * A ZeroMQ endpoint the daemon binds: tcp://HOST:PORT (unless ipc_only) or
 * ipc://PATH, with a relative PATH made absolute. Abstract sockets (ipc://@name) are
 * kept as written. Sets *out to the endpoint to bind.
 */
static int set_endpoint(struct parser *p, const char *key, const char *value, bool ipc_only,
                        char **out, bool *off_loopback)
{
    char q[QUOTE_BUF];
    struct bind b = { .line = p->line };
    char *ep = NULL;
    if (!ipc_only && strncmp(value, "tcp://", 6) == 0) {
        char *shown;
        const char *why;
        int rc = parse_hostport(value + 6, true, &shown, &b.str, &b.port, &why);
        if (rc == -EINVAL)
            return fail(p, p->line, "%s '%s': %s", key, quote(q, value), why);
        if (rc < 0)
            return rc;
        free(shown);
        b.kind = BIND_TCP;
        *off_loopback = !host_is_loopback(b.str);
        ep = strdup(value);
    } else if (strncmp(value, "ipc://", 6) == 0) {
        const char *path = value + 6;
        if (!*path)
            return fail(p, p->line, "%s '%s': empty ipc path", key, quote(q, value));
        /* Only a socket file has an owner and a mode that keep other users out. */
        if (ipc_only && path[0] == '@')
            return fail(p, p->line,
                        "%s '%s': an abstract socket has no file permissions (any local "
                        "process could use it): use ipc://PATH", key, quote(q, value));
        char *abs = path[0] == '@' ? strdup(path) : resolve_path(p, path);
        if (!abs)
            return -ENOMEM;
        /* bind() would fail later with a less helpful ENAMETOOLONG. */
        if (strlen(abs) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            free(abs);
            return fail(p, p->line, "%s '%s': socket path longer than %zu bytes", key,
                        quote(q, value), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        }
        b.kind = BIND_IPC;
        b.str = abs;
        if (asprintf(&ep, "ipc://%s", abs) < 0)
            ep = NULL;
    } else {
        return fail(p, p->line, "%s '%s': expected %s", key, quote(q, value),
                    ipc_only ? "ipc://PATH" : "tcp://HOST:PORT or ipc://PATH");
    }
    if (!ep || asprintf(&b.what, "%s '%s'", key, quote(q, value)) < 0) {
        free(ep);
        free(b.str);
        return -ENOMEM;
    }
    char prefix[QUOTE_BUF + 32];
    snprintf(prefix, sizeof(prefix), "%s '%s'", key, q);
    int rc = bind_add(p, b, prefix);
    if (rc < 0) {
        free(ep);
        return rc;
    }
    *out = ep;
    return 0;
}

/* Where the C library reads zone files: $TZDIR, as glibc does, else the tzdata path. */
static const char *zoneinfo_dir(void)
{
    const char *dir = getenv("TZDIR");
    return dir && *dir ? dir : "/usr/share/zoneinfo";
}

/*
 * An IANA zone name ("Europe/Berlin", "UTC") that names a compiled zone file. The
 * file is checked here because glibc silently takes an unknown TZ as UTC: a typo
 * would print every label an hour or more off without a word.
 */
static int timezone_check(const char *name, const char **why)
{
    *why = "expected an IANA time zone name such as Europe/Berlin or UTC";
    if (name[0] == '/' || name[0] == '.' || strlen(name) > 64 || strstr(name, "..") ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
            strlen(name))
        return -EINVAL;
    char path[PATH_MAX], magic[4];
    snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir(), name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
    if (fd >= 0)
        (void)close(fd);
    if (n != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4) != 0) {
        *why = "no such time zone (not a zone file under the system's zoneinfo; "
               "`timedatectl list-timezones` lists them)";
        return -EINVAL;
    }
    return 0;
}

int config_timezone_apply(const config_t *cfg)
{
    if (!cfg || !cfg->timezone)
        return 0;
    if (setenv("TZ", cfg->timezone, 1) < 0)
        return -errno;
    tzset();
    return 0;
}

/*
 * http = HOST:PORT (or "off"): the web server's listening address. It is a TCP bind
 * like the others, so a scanner port or the pub endpoint on the same port is caught
 * here rather than at bind time.
 */
static int set_http(struct parser *p, const char *value)
{
    char q[QUOTE_BUF];
    if (strcmp(value, "off") == 0)
        return 0;
    struct bind b = { .line = p->line, .kind = BIND_TCP };
    char *shown = NULL;
    const char *why;
    int rc = parse_hostport(value, false, &shown, &b.str, &b.port, &why);
    if (rc == -EINVAL)
        return fail(p, p->line, "http '%s': %s (or off)", quote(q, value), why);
    if (rc < 0)
        return rc;
    if (asprintf(&b.what, "http '%s'", quote(q, value)) < 0) {
        free(shown);
        free(b.str);
        return -ENOMEM;
    }
    bool loopback = strcmp(b.str, "::1") == 0 || strcmp(b.str, "localhost") == 0 ||
                    strncmp(b.str, "127.", 4) == 0;
    char prefix[QUOTE_BUF + 32];
    snprintf(prefix, sizeof(prefix), "http '%s'", q);
    if ((rc = bind_add(p, b, prefix)) < 0) {
        free(shown);
        return rc;
    }
    p->cfg->http_host = shown;
    p->cfg->http_port = b.port;
    p->cfg->http_loopback = loopback;
    return 0;
}

/*
 * retain_subscribers = NAME[, NAME...] (blanks or commas between): the subscribers
 * whose acknowledgements hold events back from retention (docs/control.md, "Replay").
 */
static int set_subscribers(struct parser *p, const char *value)
{
    config_t *cfg = p->cfg;
    char q[QUOTE_BUF];
    const char *c = value;
    while (*c) {
        size_t skip = strspn(c, " \t,"), len;
        c += skip;
        if (!*c)
            break;
        len = strcspn(c, " \t,");
        char *name = strndup(c, len);
        if (!name)
            return -ENOMEM;
        c += len;
        bool ok = len <= CONFIG_SUBSCRIBER_MAX && station_name_ok_len(name);
        for (size_t i = 0; ok && i < cfg->nretain_subscribers; i++)
            ok = strcmp(cfg->retain_subscribers[i], name) != 0;
        if (!ok) {
            int rc = fail(p, p->line, "retain_subscribers '%s': '%s' is not a new name of 1 to "
                          "64 of A-Z a-z 0-9 _ . -", quote(q, value), name);
            free(name);
            return rc;
        }
        char **nl = realloc(cfg->retain_subscribers,
                            (cfg->nretain_subscribers + 1) * sizeof(*nl));
        if (!nl) {
            free(name);
            return -ENOMEM;
        }
        cfg->retain_subscribers = nl;
        nl[cfg->nretain_subscribers++] = name;
    }
    return 0;
}

static int set_daemon_key(struct parser *p, enum daemon_key k, const char *value)
{
    config_t *cfg = p->cfg;
    const char *key = daemon_keys[k].name;
    char q[QUOTE_BUF];
    uint64_t n;

    switch (k) {
    case K_DATABASE:
    case K_POLICIES: {
        char *path = resolve_path(p, value);
        if (!path)
            return -ENOMEM;
        *(k == K_DATABASE ? &cfg->database : &cfg->policies) = path;
        return 0;
    }
    case K_PUB:
        return set_endpoint(p, key, value, false, &cfg->pub, &p->off_loopback[k]);
    case K_REPLAY:
        return set_endpoint(p, key, value, false, &cfg->replay, &p->off_loopback[k]);
    case K_CONTROL:
        return set_endpoint(p, key, value, true, &cfg->control, &p->off_loopback[k]);
    case K_CONTROL_GROUP:
        /* Checked now, so that --check-config catches a group the system lacks. */
        if (!getgrnam(value))
            return fail(p, p->line, "%s '%s': no such group", key, quote(q, value));
        return (cfg->control_group = strdup(value)) ? 0 : -ENOMEM;
    case K_CURVE_SECRET_KEY:
    case K_CURVE_ALLOWED_CLIENTS: {
        char *path = resolve_path(p, value);
        if (!path)
            return -ENOMEM;
        *(k == K_CURVE_SECRET_KEY ? &cfg->curve_secret_key : &cfg->curve_allowed_clients) = path;
        return 0;
    }
    case K_RETAIN_DAYS:
        if (parse_uint(value, 1, 36500, &n) < 0)
            return fail(p, p->line, "%s '%s': expected a number of days from 1 to 36500 "
                        "(leave it out to keep everything)", key, quote(q, value));
        cfg->retain_days = (int)n;
        return 0;
    case K_RETAIN_SUBSCRIBERS:
        return set_subscribers(p, value);
    case K_LOG_LEVEL: {
        static const struct { const char *name; int prio; } levels[] = {
            { "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
            { "info", LOG_INFO }, { "debug", LOG_DEBUG },
        };
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
            if (strcmp(value, levels[i].name) == 0) {
                cfg->log_level = levels[i].prio;
                return 0;
            }
        }
        return fail(p, p->line, "%s '%s': expected err, warning, notice, info or debug", key,
                    quote(q, value));
    }
    case K_DOUBLE_READ_MS:
        if (parse_uint(value, 0, 60000, &n) < 0)
            return fail(p, p->line, "%s '%s': expected an integer from 0 to 60000", key,
                        quote(q, value));
        cfg->double_read_ms = (int64_t)n;
        return 0;
    case K_MAX_SCAN_LEN:
        if (parse_uint(value, 1, 65536, &n) < 0)
            return fail(p, p->line, "%s '%s': expected an integer from 1 to 65536", key,
                        quote(q, value));
        cfg->max_scan_len = (size_t)n;
        return 0;
    case K_RMA_PATTERN: {
        regex_t re;
        int rc = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            (void)regerror(rc, &re, why, sizeof(why));
            return fail(p, p->line, "%s '%s': %s", key, quote(q, value), why);
        }
        regfree(&re);
        char *pat = strdup(value);
        if (!pat)
            return -ENOMEM;
        free(cfg->rma_pattern);
        cfg->rma_pattern = pat;
        return 0;
    }
    case K_PRINT_RETRY_MS:
    case K_PRINT_RETRY_MAX_MS:
        if (parse_uint(value, 100, 3600000, &n) < 0)
            return fail(p, p->line, "%s '%s': expected an integer from 100 to 3600000", key,
                        quote(q, value));
        *(k == K_PRINT_RETRY_MS ? &cfg->print_retry_ms : &cfg->print_retry_max_ms) = (int64_t)n;
        return 0;
    case K_HEARTBEAT_MS:
        if (parse_uint(value, 0, 600000, &n) < 0 || (n > 0 && n < 100))
            return fail(p, p->line, "%s '%s': expected 0 (off) or an integer from 100 to 600000",
                        key, quote(q, value));
        cfg->heartbeat_ms = (int64_t)n;
        return 0;
    case K_TIMEZONE: {
        const char *why;
        if (timezone_check(value, &why) < 0)
            return fail(p, p->line, "%s '%s': %s", key, quote(q, value), why);
        return (cfg->timezone = strdup(value)) ? 0 : -ENOMEM;
    }
    case K_HTTP:
        return set_http(p, value);
    case K_LOCAL_POLICIES:
        return (cfg->local_policies = resolve_path(p, value)) ? 0 : -ENOMEM;
    case K_HTTP_PASSWORD_FILE:
    case K_WEB_ROOT: {
        char *path = resolve_path(p, value);
        if (!path)
            return -ENOMEM;
        *(k == K_WEB_ROOT ? &cfg->web_root : &cfg->http_password_file) = path;
        return 0;
    }
    case K_COUNT:
        break;
    }
    return -EINVAL;
}

static int add_scanner(struct parser *p, const char *value);

/* One `key = value` of [station NAME] (not empty, not a duplicate). */
static int set_station_key(struct parser *p, config_station_t *st, enum station_key k,
                           const char *value)
{
    char q[QUOTE_BUF];
    switch (k) {
    case SK_SCANNER:
        return add_scanner(p, value);
    case SK_PRINTER:
        if (!cups_queue_ok(value))
            return fail(p, p->line,
                        "station '%s': printer '%s': a CUPS queue name has 1 to 127 "
                        "printable characters, no spaces, '/' or '#'",
                        st->name, quote(q, value));
        return (st->printer = strdup(value)) ? 0 : -ENOMEM;
    case SK_LABEL_FORMAT:
        if (strcmp(value, "zpl") == 0 || strcmp(value, "pdf") == 0) {
            st->label_format = value[0] == 'z' ? CONFIG_LABEL_ZPL : CONFIG_LABEL_PDF;
            return 0;
        }
        return fail(p, p->line, "label_format '%s': expected zpl or pdf", quote(q, value));
    case SK_LABEL_SIZE:
        if (strcmp(value, "4x6") == 0 || strcmp(value, "2x1") == 0) {
            st->label_size = value[0] == '4' ? CONFIG_LABEL_4X6 : CONFIG_LABEL_2X1;
            return 0;
        }
        return fail(p, p->line, "label_size '%s': expected 4x6 or 2x1 (inches)", quote(q, value));
    case SK_LABEL_DPI:
        if (strcmp(value, "203") == 0 || strcmp(value, "300") == 0) {
            st->label_dpi = value[0] == '2' ? 203 : 300;
            return 0;
        }
        return fail(p, p->line, "label_dpi '%s': expected 203 or 300", quote(q, value));
    case SK_COUNT:
        break;
    }
    return -EINVAL;
}

/* ---- scanners ------------------------------------------------------------------- */

/*
 * Scanner options (",key=value" after the device), checked generically: a number
 * range, or one of a list of words. The drivers read them back with
 * config_scanner_option() and apply their defaults (drivers/scanner.h).
 */
/* The `words` of an option whose value is bytes in config_unescape()'s notation. */
static const char BYTES[] = "bytes";
/* The `words` of an option whose value is an XKB keyboard layout (layout_check). */
static const char LAYOUT[] = "layout";

/* Where xkbcommon reads layouts: $XKB_CONFIG_ROOT, as drivers/keymap.c does, else xkb-data's. */
static const char *xkb_root(void)
{
    const char *dir = secure_getenv("XKB_CONFIG_ROOT");
    return dir && *dir ? dir : "/usr/share/X11/xkb";
}

/*
 * Whether XKB has symbols for `layout` (its file under symbols/) and, when variant is
 * not empty, a section `xkb_symbols "VARIANT"` in it: where xkbcommon looks them up.
 * (xkb-data's rules/evdev.lst, the human list, leaves out aliases such as ch(de).)
 * -ENOENT when the symbols directory itself is missing.
 */
static int xkb_symbols_has(const char *layout, const char *variant)
{
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof(path), "%s/symbols", xkb_root());
    if (access(path, R_OK | X_OK) < 0)
        return -ENOENT;
    snprintf(path, sizeof(path), "%s/symbols/%s", xkb_root(), layout);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    bool found = !*variant;
    while (!found && fgets(line, sizeof(line), f)) {
        const char *q = strstr(line, "xkb_symbols");
        const char *name = q ? strchr(q, '"') : NULL;
        found = name && strncmp(name + 1, variant, strlen(variant)) == 0 &&
                name[1 + strlen(variant)] == '"';
    }
    fclose(f);
    return found;
}

/*
 * A keyboard layout as drivers/keymap.c compiles it: LAYOUT or LAYOUT(VARIANT), both
 * names in XKB's rules list, so a typo is a config error (--check-config too) rather
 * than a scanner that fails at start.
 */
static int layout_check(const char *value, char **why)
{
    static const char hint[] = "XKB layouts and variants are listed in %s/rules/evdev.lst "
                               "(or by `localectl list-x11-keymap-layouts` and `localectl "
                               "list-x11-keymap-variants LAYOUT`)";
    char layout[64], variant[64] = "";
    size_t n = strcspn(value, "(");
    const char *v = value + n;
    if (n == 0 || n >= sizeof(layout) ||
        (*v && (strlen(v) < 3 || strlen(v) - 2 >= sizeof(variant) ||
                v[strlen(v) - 1] != ')' || strchr(v + 1, '(') || strchr(v, ')') != v + strlen(v) - 1)))
        return asprintf(why, "option layout=%s: expected LAYOUT or LAYOUT(VARIANT), such as "
                        "fr or ch(fr)", value) < 0 ? -ENOMEM : -EINVAL;
    for (size_t i = 0; i < n; i++)
        layout[i] = (char)tolower((unsigned char)value[i]);
    layout[n] = '\0';
    if (*v) {
        memcpy(variant, v + 1, strlen(v) - 2);
        variant[strlen(v) - 2] = '\0';
    }
    static const char lchars[] = "abcdefghijklmnopqrstuvwxyz0123456789_-";
    static const char vchars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789_-";
    int rc = strspn(layout, lchars) == strlen(layout) && strspn(variant, vchars) == strlen(variant)
                 ? xkb_symbols_has(layout, variant)
                 : 0;
    if (rc > 0)
        return 0;
    char *h = NULL;
    if (asprintf(&h, hint, xkb_root()) < 0)
        return -ENOMEM;
    rc = rc < 0 ? asprintf(why, "option layout=%s: cannot read XKB's layouts in %s "
                           "(is xkb-data installed?)", value, xkb_root())
         : *variant ? asprintf(why, "option layout=%s: XKB layout %s has no variant %s; %s",
                               value, layout, variant, h)
                    : asprintf(why, "option layout=%s: no such XKB layout; %s", value, h);
    free(h);
    return rc < 0 ? -ENOMEM : -EINVAL;
}

/* The `words` of allow=: networks, parsed into config_scanner_t.allow. */
static const char CIDRS[] = "cidrs";

bool config_cidr_match(const config_cidr_t *nets, size_t n, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (family == AF_INET6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
        family = AF_INET;
        addr += 12;
    }
    for (size_t i = 0; i < n; i++) {
        if (nets[i].family != family)
            continue;
        unsigned bits = nets[i].prefix, full = bits / 8, rest = bits % 8;
        if (memcmp(nets[i].addr, addr, full) != 0)
            continue;
        uint8_t mask = (uint8_t)(0xff00u >> rest);
        if (rest == 0 || (addr[full] & mask) == nets[i].addr[full])
            return true;
    }
    return false;
}

/*
 * allow=CIDR[;CIDR...]: "10.0.0.0/8", "192.168.1.20" (one host), "fd00::/8", "::1".
 * A network with bits set past its prefix is refused: it is a typo more often than not
 * (10.1.2.3/8 would let all of 10/8 in). Appends to s->allow; *why is malloc'd.
 */
static int parse_cidrs(config_scanner_t *s, const char *value, char **why)
{
    char q[QUOTE_BUF];
    for (const char *c = value; ; c++) {
        size_t len = strcspn(c, ";");
        char item[INET6_ADDRSTRLEN + 8];
        if (len == 0 || len >= sizeof(item))
            return asprintf(why, "allow=%s: expected CIDR[;CIDR...] such as 10.0.0.0/8;fd00::/8",
                            quote(q, value)) < 0 ? -ENOMEM : -EINVAL;
        memcpy(item, c, len);
        item[len] = '\0';
        char *slash = strchr(item, '/');
        if (slash)
            *slash = '\0';
        config_cidr_t net = { 0 };
        if (inet_pton(AF_INET, item, net.addr) == 1)
            net.family = AF_INET, net.prefix = 32;
        else if (inet_pton(AF_INET6, item, net.addr) == 1)
            net.family = AF_INET6, net.prefix = 128;
        else
            return asprintf(why, "allow=%s: '%s' is not an IPv4 or IPv6 address",
                            quote(q, value), item) < 0 ? -ENOMEM : -EINVAL;
        uint64_t bits = net.prefix;
        if (slash && parse_uint(slash + 1, 0, net.prefix, &bits) < 0)
            return asprintf(why, "allow=%s: prefix '/%s' out of range (0 to %u)",
                            quote(q, value), slash + 1, net.prefix) < 0 ? -ENOMEM : -EINVAL;
        net.prefix = (unsigned)bits;
        size_t nbytes = net.family == AF_INET ? 4 : 16;
        for (size_t b = 0; b < nbytes; b++) {
            unsigned keep = net.prefix >= 8 * (b + 1) ? 8 : net.prefix > 8 * b ? net.prefix - 8 * b : 0;
            uint8_t mask = (uint8_t)(0xff00u >> keep);
            if (net.addr[b] & (uint8_t)~mask)
                return asprintf(why, "allow=%s: '%s/%u' has bits set past its prefix",
                                quote(q, value), item, net.prefix) < 0 ? -ENOMEM : -EINVAL;
        }
        config_cidr_t *na = realloc(s->allow, (s->nallow + 1) * sizeof(*na));
        if (!na)
            return -ENOMEM;
        s->allow = na;
        na[s->nallow++] = net;
        c += len;
        if (!*c)
            return 0;
    }
}

int config_unescape(const char *text, uint8_t *out, size_t *len, const char **why)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        uint8_t b = (uint8_t)*p;
        if (*p == '\\') {
            p++;
            switch (*p) {
            case '\\': b = '\\'; break;
            case 'r': b = '\r'; break;
            case 'n': b = '\n'; break;
            case 't': b = '\t'; break;
            case 'e': b = 0x1b; break;
            case 'x': {
                unsigned v = 0;
                for (int i = 1; i <= 2; i++) {
                    char c = p[i];
                    int d = c >= '0' && c <= '9' ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                    if (d < 0) {
                        *why = "\\x takes two hex digits";
                        return -EINVAL;
                    }
                    v = v * 16 + (unsigned)d;
                }
                b = (uint8_t)v;
                p += 2;
                break;
            }
            default:
                *why = "unknown escape (expected \\xHH, \\r, \\n, \\t, \\e or \\\\)";
                return -EINVAL;
            }
        }
        if (n == CONFIG_FEEDBACK_MAX) {
            *why = "longer than 32 bytes";
            return -EINVAL;
        }
        if (out)
            out[n] = b;
        n++;
    }
    *len = n;
    return 0;
}

#define OPT_USB    (1u << CONFIG_SCANNER_USB)
#define OPT_SERIAL (1u << CONFIG_SCANNER_SERIAL)
#define OPT_TCP    (1u << CONFIG_SCANNER_TCP)
static const struct {
    const char *key;
    unsigned kinds;         /* OPT_USB | OPT_SERIAL: which scanners take it */
    const char *words;      /* "none|odd|even", or NULL for a number */
    uint64_t min, max;
} scanner_opts[] = {
    { "baud", OPT_SERIAL, NULL, 50, 4000000 },
    { "parity", OPT_SERIAL, "none|odd|even", 0, 0 },
    { "bits", OPT_SERIAL, "7|8", 0, 0 },
    { "stop", OPT_SERIAL, "1|2", 0, 0 },
    { "flow", OPT_SERIAL, "none|rtscts|xonxoff", 0, 0 },
    { "layout", OPT_USB, LAYOUT, 0, 0 },
    { "alt", OPT_USB, "yes|no", 0, 0 },
    { "detach", OPT_USB, "yes|no", 0, 0 },
    { "eol", OPT_USB | OPT_SERIAL, "required|none", 0, 0 },
    { "eol_ms", OPT_USB | OPT_SERIAL, NULL, 10, 60000 },
    /* Bytes written back to the scanner (config_unescape): words BYTES. */
    { "feedback_ok", OPT_SERIAL, BYTES, 0, 0 },
    { "feedback_reject", OPT_SERIAL, BYTES, 0, 0 },
    { "feedback_double", OPT_SERIAL, BYTES, 0, 0 },
    /* Seconds without a byte after which a TCP client is closed; 0: never. */
    { "idle_timeout", OPT_TCP, NULL, 0, 86400 },
    /* The peers a TCP scanner accepts (parse_cidrs): words CIDRS. */
    { "allow", OPT_TCP, CIDRS, 0, 0 },
    /* The scan budget (drivers/scanner.h): reads a second (0: none) and at once. */
    { "rate", OPT_USB | OPT_SERIAL | OPT_TCP, NULL, 0, 10000 },
    { "burst", OPT_USB | OPT_SERIAL | OPT_TCP, NULL, 1, 100000 },
};

static bool word_in(const char *word, const char *words)
{
    size_t n = strlen(word);
    for (const char *w = words; *w;) {
        size_t len = strcspn(w, "|");
        if (len == n && strncmp(w, word, n) == 0)
            return true;
        w += len + (w[len] == '|');
    }
    return false;
}

/*
 * Split and check ",key=value,..." (opts points after the first ',') for a scanner of
 * kind s->kind. On a bad option *why is set to a malloc'd reason. Fills s->opts.
 */
static int parse_scanner_options(config_scanner_t *s, const char *opts, char **why)
{
    char q[QUOTE_BUF];
    char *copy = strdup(opts);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    /* strtok_r would skip empty items; ",," must be an error, so split by hand. */
    for (char *item = copy; item; item = save) {
        save = strchr(item, ',');
        if (save)
            *save++ = '\0';
        char *eq = strchr(item, '=');
        if (!*item) {
            rc = asprintf(why, "empty option");
            goto out;
        }
        if (!eq || eq == item || !eq[1]) {
            rc = asprintf(why, "option '%s': expected key=value", quote(q, item));
            goto out;
        }
        *eq = '\0';
        const char *key = item, *value = eq + 1;
        unsigned kind = 1u << s->kind;
        size_t k = 0, nk = sizeof(scanner_opts) / sizeof(scanner_opts[0]);
        while (k < nk && !((scanner_opts[k].kinds & kind) && strcmp(scanner_opts[k].key, key) == 0))
            k++;
        if (k == nk) {
            rc = asprintf(why, "unknown option '%s' (expected %s)", quote(q, key),
                          kind == OPT_USB   ? "layout, alt, detach, eol, eol_ms, rate or burst"
                          : kind == OPT_TCP ? "idle_timeout, allow, rate or burst"
                                            : "baud, parity, bits, stop, flow, eol, eol_ms, "
                                              "feedback_ok, feedback_reject, feedback_double, "
                                              "rate or burst");
            goto out;
        }
        if (config_scanner_option(s, key)) {
            rc = asprintf(why, "option '%s' given twice", key);
            goto out;
        }
        uint64_t n;
        size_t blen;
        const char *bwhy = NULL;
        if (scanner_opts[k].words == LAYOUT) {
            if ((rc = layout_check(value, why)) < 0) {
                rc = rc == -EINVAL ? 0 : -1;  /* as out: expects from asprintf */
                goto out;
            }
        } else if (scanner_opts[k].words == CIDRS) {
            int crc = parse_cidrs(s, value, why);
            if (crc < 0) {
                if (crc == -ENOMEM)
                    *why = NULL;
                free(copy);
                return crc;
            }
        } else if (scanner_opts[k].words == BYTES) {
            if (config_unescape(value, NULL, &blen, &bwhy) < 0) {
                rc = asprintf(why, "option %s=%s: %s", key, quote(q, value), bwhy);
                goto out;
            }
        } else if (scanner_opts[k].words && !word_in(value, scanner_opts[k].words)) {
            rc = asprintf(why, "option %s=%s: expected one of %s", key, quote(q, value),
                          scanner_opts[k].words);
            goto out;
        }
        if (!scanner_opts[k].words &&
            parse_uint(value, scanner_opts[k].min, scanner_opts[k].max, &n) < 0) {
            rc = asprintf(why, "option %s=%s: expected an integer from %llu to %llu", key,
                          quote(q, value), (unsigned long long)scanner_opts[k].min,
                          (unsigned long long)scanner_opts[k].max);
            goto out;
        }
        config_option_t *no = realloc(s->opts, (s->nopts + 1) * sizeof(*no));
        if (!no) {
            rc = -ENOMEM;
            goto out;
        }
        s->opts = no;
        no[s->nopts].key = strdup(key);
        no[s->nopts].value = strdup(value);
        s->nopts++;
        if (!no[s->nopts - 1].key || !no[s->nopts - 1].value) {
            rc = -ENOMEM;
            goto out;
        }
    }
    free(copy);
    return 0;
out:
    free(copy);
    if (rc >= 0) /* asprintf succeeded: a reason, not an allocation failure */
        return -EINVAL;
    *why = NULL;
    return -ENOMEM;
}

/*
 * Parse one scanner spec into s and the bind it claims. On a bad spec, *why is a
 * static or (*why_owned) malloc'd reason and -EINVAL is returned.
 */
static int parse_scanner(config_scanner_t *s, struct bind *b, const char **why,
                         char **why_owned)
{
    const char *spec = s->spec;
    if (strncmp(spec, "tcp:", 4) == 0) {
        s->kind = CONFIG_SCANNER_TCP;
        s->arg = spec + 4;
        /* HOST:PORT ends at the first ',', where the options begin. */
        const char *comma = strchr(s->arg, ',');
        char *hostport = comma ? strndup(s->arg, (size_t)(comma - s->arg)) : NULL;
        if (comma && !hostport)
            return -ENOMEM;
        char *norm;
        int rc = parse_hostport(hostport ? hostport : s->arg, false, &s->host, &norm, &s->port,
                                why);
        free(hostport);
        if (rc < 0)
            return rc;
        if (comma) {
            rc = -ENOMEM;
            if ((s->options = strdup(comma + 1)))
                rc = parse_scanner_options(s, s->options, why_owned);
            if (rc < 0) {
                free(norm); /* the bind is the caller's only on success */
                return rc;
            }
        }
        s->loopback = host_is_loopback(norm);
        *b = (struct bind){ .kind = BIND_TCP, .str = norm, .port = s->port };
        return 0;
    }
    if (strncmp(spec, "usb:", 4) == 0) {
        s->kind = CONFIG_SCANNER_USB;
        s->arg = spec + 4;
        /* The device part ends at the first ',', where the options begin. */
        size_t devlen = strcspn(s->arg, ",");
        const char *vid = s->arg, *end = s->arg + devlen;
        const char *c1 = memchr(vid, ':', devlen);
        if (!c1) {
            *why = "expected usb:VID:PID[:SERIAL]";
            return -EINVAL;
        }
        const char *pid = c1 + 1, *c2 = memchr(pid, ':', (size_t)(end - pid));
        size_t pidlen = c2 ? (size_t)(c2 - pid) : (size_t)(end - pid);
        if (parse_hex4(vid, (size_t)(c1 - vid), &s->vid) < 0) {
            *why = "VID must be 4 hex digits";
            return -EINVAL;
        }
        if (parse_hex4(pid, pidlen, &s->pid) < 0) {
            *why = "PID must be 4 hex digits";
            return -EINVAL;
        }
        if (c2) {
            const char *ser = c2 + 1;
            size_t n = (size_t)(end - ser);
            bool ok = n >= 1 && n <= USB_SERIAL_MAX;
            for (size_t i = 0; ok && i < n; i++)
                ok = ser[i] > 0x20 && ser[i] < 0x7f;
            if (!ok) {
                *why = "serial number must be 1 to 126 printable ASCII characters, no spaces";
                return -EINVAL;
            }
            if (!(s->usb_serial = strndup(ser, n)))
                return -ENOMEM;
        }
        if (*end == ',') {
            int rc = -ENOMEM;
            if ((s->options = strdup(end + 1)))
                rc = parse_scanner_options(s, s->options, why_owned);
            if (rc < 0)
                return rc;
        }
        char *ser = NULL;
        if (s->usb_serial && !(ser = strdup(s->usb_serial)))
            return -ENOMEM;
        *b = (struct bind){ .kind = BIND_USB, .str = ser, .vid = s->vid, .pid = s->pid };
        return 0;
    }
    if (strncmp(spec, "serial:", 7) == 0) {
        s->kind = CONFIG_SCANNER_SERIAL;
        s->arg = spec + 7;
        size_t devlen = strcspn(s->arg, ",");
        const char *dev = s->arg;
        if (devlen == 0) {
            *why = "expected serial:PATH or serial:usb=VID:PID";
            return -EINVAL;
        }
        if (strncmp(dev, "usb=", 4) == 0) {
            const char *c1 = memchr(dev + 4, ':', devlen - 4);
            if (!c1 || parse_hex4(dev + 4, (size_t)(c1 - dev - 4), &s->vid) < 0 ||
                parse_hex4(c1 + 1, devlen - (size_t)(c1 + 1 - dev), &s->pid) < 0) {
                *why = "expected usb=VID:PID with 4 hex digits each";
                return -EINVAL;
            }
            *b = (struct bind){ .kind = BIND_SERIAL_USB, .vid = s->vid, .pid = s->pid };
        } else {
            if (dev[0] != '/') {
                *why = "device path must be absolute (or usb=VID:PID)";
                return -EINVAL;
            }
            if (!(s->path = strndup(dev, devlen)))
                return -ENOMEM;
            char *path = strdup(s->path);
            if (!path)
                return -ENOMEM;
            *b = (struct bind){ .kind = BIND_SERIAL_PATH, .str = path };
        }
        if (dev[devlen] == ',') {
            int rc = -ENOMEM;
            if ((s->options = strdup(dev + devlen + 1)))
                rc = parse_scanner_options(s, s->options, why_owned);
            if (rc < 0) {
                free(b->str);
                b->str = NULL;
                return rc;
            }
        }
        return 0;
    }
    *why = "unknown scanner kind (expected tcp:, usb: or serial:)";
    return -EINVAL;
}

/* A `scanner = SPEC` line of the current station. */
static int add_scanner(struct parser *p, const char *value)
{
    config_station_t *st = &p->cfg->stations[p->st];
    char q[QUOTE_BUF], qn[QUOTE_BUF];
    config_scanner_t *ns = realloc(st->scanners, (st->nscanners + 1) * sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    st->scanners = ns;
    config_scanner_t *s = &ns[st->nscanners];
    memset(s, 0, sizeof(*s));
    s->line = p->line;
    if (!(s->spec = strdup(value)))
        return -ENOMEM;
    /* Counted now, so that config_destroy frees it even when it is rejected below. */
    st->nscanners++;

    struct bind b = { 0 };
    const char *why = NULL;
    char *why_owned = NULL;
    int rc = parse_scanner(s, &b, &why, &why_owned);
    if (rc == -EINVAL) {
        rc = fail(p, p->line, "station '%s': scanner '%s': %s", st->name, quote(q, value),
                  why_owned ? why_owned : why);
        free(why_owned);
        return rc;
    }
    if (rc < 0)
        return rc;
    /* Off loopback, anyone on the network could type scans into the dock. */
    if (s->kind == CONFIG_SCANNER_TCP && !s->loopback && s->nallow == 0) {
        free(b.str);
        return fail(p, p->line,
                    "station '%s': scanner '%s' listens off loopback: add "
                    ",allow=CIDR[;CIDR...] (the networks whose peers may send scans)",
                    st->name, quote(q, value));
    }
    b.line = p->line;
    if (asprintf(&b.what, "scanner '%s' of station '%s'", quote(q, value), st->name) < 0) {
        free(b.str);
        return -ENOMEM;
    }
    char prefix[2 * QUOTE_BUF + 32];
    snprintf(prefix, sizeof(prefix), "station '%s': scanner '%s'", quote(qn, st->name), q);
    return bind_add(p, b, prefix);
}

/* ---- [forward] ------------------------------------------------------------------ */

/* A NATS subject token or stream name: 1..max of A-Z a-z 0-9 _ - (no '.', '*', '>'). */
static bool nats_token_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return false;
    return true;
}

/* Dot-separated tokens, e.g. "rmad" or "acme.returns". */
static bool subject_prefix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *c = s; *c; c++)
        if (*c != '.' && !isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return false;
    return true;
}

/* "nats://host:4222, tls://other:4222": each URL nats:// or tls:// with a host. */
static int set_nats_servers(struct parser *p, config_forward_t *f, const char *value)
{
    char q[QUOTE_BUF];
    char *copy = strdup(value), *rest_list = copy, *tok;
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    /* strsep, not strtok: "a,,b" and a trailing comma are errors, not skipped. */
    while (rc == 0 && (tok = strsep(&rest_list, ",")) != NULL) {
        char *url = trim(tok);
        const char *rest = strncmp(url, "nats://", 7) == 0  ? url + 7
                           : strncmp(url, "tls://", 6) == 0 ? url + 6
                                                            : NULL;
        if (!rest || !*rest || strpbrk(url, " \t")) {
            rc = fail(p, p->line, "bad nats URL '%s' (expected nats://HOST:PORT or tls://HOST:PORT)",
                      quote(q, url));
            break;
        }
        char **ns = realloc(f->servers, (f->nservers + 1) * sizeof(*ns));
        if (!ns || !(ns[f->nservers] = strdup(url))) {
            if (ns)
                f->servers = ns;
            rc = -ENOMEM;
            break;
        }
        f->servers = ns;
        f->nservers++;
    }
    free(copy);
    if (rc == 0 && f->nservers == 0)
        rc = fail(p, p->line, "nats: no URL (expected nats://HOST:PORT[,...])");
    return rc;
}

static int set_forward_key(struct parser *p, enum forward_key k, const char *value)
{
    config_forward_t *f = p->cfg->forward;
    char q[QUOTE_BUF];
    uint64_t n;
    char **path = NULL;

    switch (k) {
    case FK_NATS:
        return set_nats_servers(p, f, value);
    case FK_SITE:
        if (!nats_token_ok(value, 64))
            return fail(p, p->line, "bad site '%s' (expected 1 to 64 of A-Z a-z 0-9 _ -: "
                        "it is a NATS subject token)", quote(q, value));
        return (f->site = strdup(value)) ? 0 : -ENOMEM;
    case FK_STREAM:
        if (!nats_token_ok(value, 32))
            return fail(p, p->line, "bad stream '%s' (expected 1 to 32 of A-Z a-z 0-9 _ -)",
                        quote(q, value));
        free(f->stream);
        return (f->stream = strdup(value)) ? 0 : -ENOMEM;
    case FK_SUBJECT_PREFIX:
        if (!subject_prefix_ok(value))
            return fail(p, p->line, "bad subject_prefix '%s' (expected tokens of A-Z a-z 0-9 _ - "
                        "separated by '.')", quote(q, value));
        free(f->subject_prefix);
        return (f->subject_prefix = strdup(value)) ? 0 : -ENOMEM;
    case FK_MAX_INFLIGHT:
        if (parse_uint(value, 1, 65536, &n) < 0)
            return fail(p, p->line, "bad max_inflight '%s' (expected 1 to 65536)", quote(q, value));
        f->max_inflight = (unsigned)n;
        return 0;
    case FK_TLS:
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
            return fail(p, p->line, "bad tls '%s' (expected on or off)", quote(q, value));
        f->tls = strcmp(value, "on") == 0;
        return 0;
    case FK_RMA_FEED:
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
            return fail(p, p->line, "bad rma_feed '%s' (expected yes or no)", quote(q, value));
        f->rma_feed = strcmp(value, "yes") == 0;
        return 0;
    case FK_RMA_CONSUMER:
        if (!nats_token_ok(value, 64))
            return fail(p, p->line, "bad rma_consumer '%s' (expected 1 to 64 of A-Z a-z 0-9 _ -: "
                        "a durable consumer name)", quote(q, value));
        free(f->rma_consumer);
        return (f->rma_consumer = strdup(value)) ? 0 : -ENOMEM;
    case FK_NKEY:
        if (strlen(value) != 56 || value[0] != 'U')
            return fail(p, p->line, "bad nkey '%s' (expected a user's public nkey: U and 55 more)",
                        quote(q, value));
        return (f->nkey = strdup(value)) ? 0 : -ENOMEM;
    case FK_CREDS: path = &f->creds; break;
    case FK_NKEY_SEED: path = &f->nkey_seed; break;
    case FK_TLS_CA: path = &f->tls_ca; break;
    case FK_TLS_CERT: path = &f->tls_cert; break;
    case FK_TLS_KEY: path = &f->tls_key; break;
    case FK_COUNT: break;
    }
    if (!path)
        return -EINVAL;
    return (*path = resolve_path(p, value)) ? 0 : -ENOMEM;
}

/* The whole [forward] section: required keys, keys that go in pairs. */
static int forward_close(struct parser *p)
{
    config_forward_t *f = p->cfg->forward;
    if (!f->nservers)
        return fail(p, f->line, "missing key 'nats' in [forward]");
    if (!f->site)
        return fail(p, f->line, "missing key 'site' in [forward] (unique per dock site)");
    if (!!f->nkey != !!f->nkey_seed)
        return fail(p, f->line, "[forward]: nkey and nkey_seed go together");
    if (f->nkey && f->creds)
        return fail(p, f->line, "[forward]: creds or nkey, not both");
    if (!!f->tls_cert != !!f->tls_key)
        return fail(p, f->line, "[forward]: tls_cert and tls_key go together");
    if (f->tls_ca || f->tls_cert)
        f->tls = true;
    if ((!f->stream && !(f->stream = strdup("RMAD"))) ||
        (!f->subject_prefix && !(f->subject_prefix = strdup("rmad"))))
        return -ENOMEM;
    if (f->rma_consumer && !f->rma_feed)
        return fail(p, f->line, "[forward]: rma_consumer without rma_feed = yes");
    if (f->rma_feed && !f->rma_consumer && asprintf(&f->rma_consumer, "rmad-%s", f->site) < 0) {
        f->rma_consumer = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int open_forward(struct parser *p)
{
    if (p->cfg->forward)
        return fail(p, p->line, "duplicate section [forward] (first on line %d)",
                    p->cfg->forward->line);
    if (!(p->cfg->forward = calloc(1, sizeof(*p->cfg->forward))))
        return -ENOMEM;
    p->cfg->forward->line = p->line;
    p->cfg->forward->max_inflight = 256;
    memset(p->forward_key_line, 0, sizeof(p->forward_key_line));
    p->sec = SEC_FORWARD;
    return 0;
}

/* ---- sections and lines --------------------------------------------------------- */

/* Checks that need the whole section: its required keys. */
static int section_close(struct parser *p)
{
    if (p->sec == SEC_DAEMON) {
        for (int k = 0; k < K_COUNT; k++)
            if (daemon_keys[k].required && !p->key_line[k])
                return fail(p, p->daemon_line, "missing key '%s' in [daemon]",
                            daemon_keys[k].name);
    } else if (p->sec == SEC_STATION) {
        config_station_t *st = &p->cfg->stations[p->st];
        if (st->nscanners == 0)
            return fail(p, st->line, "missing key 'scanner' in [station %s]", st->name);
    } else if (p->sec == SEC_FORWARD) {
        return forward_close(p);
    }
    return 0;
}

static int open_station(struct parser *p, const char *name)
{
    char q[QUOTE_BUF];
    config_t *cfg = p->cfg;
    if (!*name)
        return fail(p, p->line, "missing station name (expected [station NAME])");
    if (!station_name_ok(name))
        return fail(p, p->line,
                    "bad station name '%s' (expected 1 to 32 of A-Z a-z 0-9 _ . -)",
                    quote(q, name));
    for (size_t i = 0; i < cfg->nstations; i++)
        if (strcmp(cfg->stations[i].name, name) == 0)
            return fail(p, p->line, "duplicate station '%s' (first on line %d)", name,
                        cfg->stations[i].line);
    config_station_t *ns = realloc(cfg->stations, (cfg->nstations + 1) * sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    cfg->stations = ns;
    config_station_t *st = &ns[cfg->nstations];
    memset(st, 0, sizeof(*st));
    st->line = p->line;
    if (!(st->name = strdup(name)))
        return -ENOMEM;
    p->st = cfg->nstations++;
    p->sec = SEC_STATION;
    memset(p->station_key_line, 0, sizeof(p->station_key_line));
    st->label_format = CONFIG_LABEL_ZPL;
    st->label_size = CONFIG_LABEL_4X6;
    st->label_dpi = 203;
    return 0;
}

/* "[daemon]" or "[station NAME]"; s is trimmed, comment-free and starts with '['. */
static int section_line(struct parser *p, char *s)
{
    char q[QUOTE_BUF];
    size_t n = strlen(s);
    if (s[n - 1] != ']' || n < 2)
        return fail(p, p->line, "expected ']' at the end of section header '%s'", quote(q, s));
    s[n - 1] = '\0';
    char *inner = trim(s + 1);
    int rc = section_close(p);
    if (rc < 0)
        return rc;
    if (strcmp(inner, "daemon") == 0) {
        if (p->daemon_line)
            return fail(p, p->line, "duplicate section [daemon] (first on line %d)",
                        p->daemon_line);
        p->daemon_line = p->line;
        p->sec = SEC_DAEMON;
        return 0;
    }
    if (strcmp(inner, "forward") == 0)
        return open_forward(p);
    if (strncmp(inner, "station", 7) == 0 && (inner[7] == '\0' || is_blank(inner[7])))
        return open_station(p, trim(inner + 7));
    return fail(p, p->line, "unknown section [%s]", quote(q, inner));
}

/* "key = value" in the current section; s is trimmed and comment-free. */
static int key_line(struct parser *p, char *s)
{
    char q[QUOTE_BUF];
    char *eq = strchr(s, '=');
    if (!eq)
        return fail(p, p->line, "missing '=' in '%s' (expected KEY = VALUE)", quote(q, s));
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (!*key)
        return fail(p, p->line, "missing key before '='");

    if (p->sec == SEC_DAEMON) {
        int k = 0;
        while (k < K_COUNT && strcmp(daemon_keys[k].name, key) != 0)
            k++;
        if (k == K_COUNT)
            return fail(p, p->line, "unknown key '%s' in [daemon]", quote(q, key));
        if (p->key_line[k])
            return fail(p, p->line, "duplicate key '%s' in [daemon] (first on line %d)", key,
                        p->key_line[k]);
        if (!*value)
            return fail(p, p->line, "empty value for '%s'", key);
        p->key_line[k] = p->line;
        return set_daemon_key(p, (enum daemon_key)k, value);
    }
    if (p->sec == SEC_STATION) {
        config_station_t *st = &p->cfg->stations[p->st];
        int k = 0;
        while (k < SK_COUNT && strcmp(station_keys[k], key) != 0)
            k++;
        if (k == SK_COUNT)
            return fail(p, p->line, "unknown key '%s' in [station %s]", quote(q, key),
                        st->name);
        if (k != SK_SCANNER && p->station_key_line[k])
            return fail(p, p->line, "duplicate key '%s' in [station %s] (first on line %d)",
                        key, st->name, p->station_key_line[k]);
        if (!*value)
            return fail(p, p->line, "empty value for '%s'", key);
        p->station_key_line[k] = p->line;
        return set_station_key(p, st, (enum station_key)k, value);
    }
    if (p->sec == SEC_FORWARD) {
        int k = 0;
        while (k < FK_COUNT && strcmp(forward_keys[k], key) != 0)
            k++;
        if (k == FK_COUNT)
            return fail(p, p->line, "unknown key '%s' in [forward]", quote(q, key));
        if (p->forward_key_line[k])
            return fail(p, p->line, "duplicate key '%s' in [forward] (first on line %d)", key,
                        p->forward_key_line[k]);
        if (!*value)
            return fail(p, p->line, "empty value for '%s'", key);
        p->forward_key_line[k] = p->line;
        return set_forward_key(p, (enum forward_key)k, value);
    }
    return fail(p, p->line, "key '%s' outside a section (expected [daemon] or [station NAME] first)",
                quote(q, key));
}

/*
 * One line, without its line terminator (at most LINE_MAX_BYTES, no NUL). Comments
 * start with ';' or '#' at the beginning of the line or after a blank, so values such
 * as "tcp://host#1" keep their '#'.
 */
static int parse_line(struct parser *p, char *s)
{
    s = trim(s);
    if (!*s || *s == ';' || *s == '#')
        return 0;
    for (char *c = s + 1; *c; c++) {
        if ((*c == ';' || *c == '#') && is_blank(c[-1])) {
            *c = '\0';
            break;
        }
    }
    s = trim(s);
    if (*s == '[')
        return section_line(p, s);
    return key_line(p, s);
}

/* The absolute directory relative paths are resolved against (see config_parse). */
static char *absolute_base(const char *base_dir)
{
    char *cwd = NULL, *out = NULL;
    if (base_dir && base_dir[0] == '/') {
        out = strdup(base_dir);
    } else {
        if (!(cwd = getcwd(NULL, 0)))
            return NULL;
        if (!base_dir || !*base_dir || strcmp(base_dir, ".") == 0)
            out = cwd, cwd = NULL;
        else if (asprintf(&out, "%s/%s", cwd, base_dir) < 0)
            out = NULL;
        free(cwd);
    }
    /* "/" + "/" + "x" would read oddly; keep the root as "" so paths become "/x". */
    if (out) {
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '/')
            out[--n] = '\0';
    }
    return out;
}

/*
 * Parse a whole text: split lines, enforce the byte-level rules (line length, NUL),
 * then parse_line, then the whole-file checks. O(size) plus O(n^2) over binds and
 * stations, which number a handful.
 */
int config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                 config_t **out, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (!text || !name || !out)
        return -EINVAL;

    struct parser p = { .name = name };
    int rc = -ENOMEM;
    p.cfg = calloc(1, sizeof(*p.cfg));
    if (!p.cfg)
        goto done;
    p.cfg->log_level = LOG_INFO;
    p.cfg->double_read_ms = 1500;
    p.cfg->max_scan_len = 512;
    p.cfg->print_retry_ms = 2000;
    p.cfg->heartbeat_ms = 5000;
    p.cfg->print_retry_max_ms = 60000;
    if (!(p.cfg->rma_pattern = strdup(CONFIG_DEFAULT_RMA_PATTERN)) ||
        !(p.cfg->source = strdup(name)) || !(p.base = absolute_base(base_dir)))
        goto done;

    size_t pos = 0;
    /* A UTF-8 byte order mark, as some Windows editors write one. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    rc = 0;
    while (pos < len && rc == 0) {
        p.line++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + 1;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n > LINE_MAX_BYTES) {
            rc = fail(&p, p.line, "line longer than %d bytes", LINE_MAX_BYTES);
            break;
        }
        if (memchr(start, '\0', n)) {
            rc = fail(&p, p.line, "NUL byte");
            break;
        }
        char buf[LINE_MAX_BYTES + 1];
        memcpy(buf, start, n);
        buf[n] = '\0';
        rc = parse_line(&p, buf);
    }
    if (rc == 0)
        rc = section_close(&p);
    if (rc == 0 && p.cfg->print_retry_max_ms < p.cfg->print_retry_ms)
        rc = fail(&p, p.key_line[K_PRINT_RETRY_MAX_MS] ? p.key_line[K_PRINT_RETRY_MAX_MS]
                                                       : p.key_line[K_PRINT_RETRY_MS],
                  "print_retry_max_ms %lld is less than print_retry_ms %lld",
                  (long long)p.cfg->print_retry_max_ms, (long long)p.cfg->print_retry_ms);
    /* Off loopback, anyone on the network could reprint or cancel labels. */
    if (rc == 0 && p.cfg->http_host && !p.cfg->http_loopback && !p.cfg->http_password_file)
        rc = fail(&p, p.key_line[K_HTTP],
                  "http '%s' is not a loopback address: set http_password_file too",
                  p.cfg->http_host);
    /* CURVE takes both: the server's secret and the clients it lets in. */
    if (rc == 0 && !p.cfg->curve_secret_key != !p.cfg->curve_allowed_clients)
        rc = fail(&p, p.key_line[K_CURVE_SECRET_KEY] ? p.key_line[K_CURVE_SECRET_KEY]
                                                     : p.key_line[K_CURVE_ALLOWED_CLIENTS],
                  "curve_secret_key and curve_allowed_clients go together: set both "
                  "(rmactl keygen writes the keys)");
    /* Off loopback without CURVE, anyone on the network could read or replay events. */
    for (int k = K_PUB; rc == 0 && k <= K_REPLAY; k++)
        if (p.off_loopback[k] && !p.cfg->curve_secret_key)
            rc = fail(&p, p.key_line[k],
                      "%s '%s' is not a loopback address: set curve_secret_key and "
                      "curve_allowed_clients too (rmactl keygen), so only listed clients connect",
                      daemon_keys[k].name, k == K_PUB ? p.cfg->pub : p.cfg->replay);
    if (rc == 0 && !p.cfg->web_root && !(p.cfg->web_root = strdup(CONFIG_WEB_ROOT)))
        rc = -ENOMEM;
    int last = p.line > 0 ? p.line : 1;
    if (rc == 0 && !p.daemon_line)
        rc = fail(&p, last, "missing section [daemon]");
    if (rc == 0 && p.cfg->nstations == 0)
        rc = fail(&p, last, "missing section [station NAME] (at least one station)");

done:
    for (size_t i = 0; i < p.nbinds; i++) {
        free(p.binds[i].str);
        free(p.binds[i].what);
    }
    free(p.binds);
    free(p.base);
    if (rc == 0) {
        *out = p.cfg;
    } else {
        config_destroy(&p.cfg);
        if (errmsg)
            *errmsg = p.err;
        else
            free(p.err);
    }
    return rc;
}

/* ---- files ---------------------------------------------------------------------- */

/* Read all of fd, up to FILE_MAX_BYTES. Returns 0 with a malloc'd *buf, or -errno. */
static int read_all(int fd, char **buf, size_t *len)
{
    size_t n = 0, cap = 0;
    char *b = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > FILE_MAX_BYTES) {
                free(b);
                return -EFBIG;
            }
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > FILE_MAX_BYTES) {
        free(b);
        return -EFBIG;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* realpath() of the directory holding path, so relative entries work from any cwd. */
static int config_dir(const char *path, char **dir)
{
    const char *slash = strrchr(path, '/');
    char *d = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!d)
        return -ENOMEM;
    char *r = realpath(d, NULL);
    int e = errno;
    free(d);
    if (!r)
        return -e;
    *dir = r;
    return 0;
}

int config_load(const char *path, config_t **out, char **errmsg)
{
    if (errmsg)
        *errmsg = NULL;
    if (!path || !out)
        return -EINVAL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto io_error;
    }
    rc = read_all(fd, &text, &len);
    (void)close(fd);
    if (rc < 0)
        goto io_error;
    rc = config_dir(path, &dir);
    if (rc < 0)
        goto io_error;
    rc = config_parse(text, len, path, dir, out, errmsg);
    free(dir);
    free(text);
    return rc;

io_error:
    free(text);
    if (errmsg && rc != -ENOMEM &&
        asprintf(errmsg, "%s: %s", path, rc == -EFBIG ? "file larger than 1 MiB" : strerror(-rc)) < 0)
        *errmsg = NULL;
    return rc;
}
