/*
 * The daemon's configuration: an INI file (rmad.conf).
 *
 *     [daemon]
 *     database = state/rmad.db        ; SQLite file
 *     policies = policies             ; directory of vendor policy files
 *     local_policies = /etc/rmad/policies ; optional: files here replace same-named ones
 *     pub      = tcp://127.0.0.1:7781 ; live events (PUB)
 *     replay   = tcp://127.0.0.1:7782 ; replay (ROUTER)
 *     control  = ipc://state/rmad.ctl ; rmactl's socket (ROUTER)
 *     log_level      = info           ; err | warning | notice | info | debug
 *     double_read_ms = 1500           ; same barcode, same scanner: one read
 *     max_scan_len   = 512            ; longer scans are rejected
 *     rma_pattern    = ^RMA-?[0-9A-Z]{4,20}$   ; POSIX extended regex
 *     heartbeat_ms   = 5000           ; bus.heartbeat on PUB (last seq); 0: off
 *
 *     print_retry_ms     = 2000       ; first delay after a failed print, doubling
 *     print_retry_max_ms = 60000      ; longest delay between print attempts
 *     timezone = Europe/Berlin        ; the dock's zone for times on labels
 *     http     = 127.0.0.1:7780       ; the web pages and API (docs/web.md); off when absent
 *     http_password_file = PATH       ; the supervisor password; required off loopback
 *     web_root = /usr/share/rmad/web  ; the pages' static files (CONFIG_WEB_ROOT)
 *     control_group = rmad            ; group of the control socket file (mode 0660)
 *     curve_secret_key = /etc/rmad/keys/server.key  ; CURVE on pub and replay (rmactl keygen)
 *     curve_allowed_clients = /etc/rmad/clients     ; every *.pub in it may connect
 *     retain_days = 365               ; delete scans and events older than this; off when absent
 *     retain_subscribers = erp wms    ; events these have not acknowledged are kept
 *
 *     [forward]                       ; optional: events to NATS JetStream (docs/forward.md)
 *     nats   = nats://hub1:4222,nats://hub2:4222   ; one URL, or several for a cluster
 *     site   = berlin                 ; required: this site's subject token
 *     stream = RMAD                   ; the JetStream stream (rmactl forward init)
 *     subject_prefix = rmad           ; subjects are PREFIX.SITE.EVENT-TYPE
 *     max_inflight = 256              ; publishes awaiting their ack at once
 *     creds = /etc/rmad/nats.creds    ; or nkey + nkey_seed; tls_ca, tls_cert, tls_key
 *     rma_feed = yes                  ; RMAs from PREFIX.SITE.rma.upsert (rma_consumer)
 *
 *     [station dock1]
 *     scanner = tcp:127.0.0.1:7790    ; one line per scanner, at least one
 *     printer = dock1-labels          ; CUPS queue, optional
 *     label_format = zpl              ; zpl (raw, thermal printers) or pdf
 *     label_size   = 4x6              ; 4x6 or 2x1 inches
 *     label_dpi    = 203              ; 203 or 300 (the printer's resolution, zpl)
 *
 * Comments start with ';' or '#', on their own line or after whitespace. Keys and
 * values are trimmed. Relative paths (database, policies, ipc:// endpoints) are made
 * absolute against the config file's directory, so a config works from any cwd.
 * Lines are at most 4096 bytes. Errors: an unknown section or key, a duplicate key
 * (scanner lines excepted), a missing required key (database, policies, pub, replay,
 * control; each station needs a scanner; at least one station), a bad value, and two
 * entries that would bind the same address or claim the same device (pub/replay/
 * control endpoints and scanners: same TCP port on overlapping hosts, same ipc or
 * serial path, same USB VID:PID unless both give different serial numbers).
 *
 * Off loopback, a listener must be protected: a tcp:// pub or replay endpoint needs
 * curve_secret_key and curve_allowed_clients, a TCP scanner needs allow=CIDR[;CIDR...],
 * and http needs http_password_file; otherwise the file is refused with the reason.
 * The control socket must be an ipc:// file (an abstract one has no permissions).
 *
 * A parsed configuration is a plain, read-only struct: the daemon walks the stations
 * and scanners directly. Every string in it is owned by the config_t and lives until
 * config_destroy().
 */
#ifndef RMAD_CONFIG_H
#define RMAD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CONFIG_SCANNER_TCP,     /* tcp:HOST:PORT, a listening socket, one scan per line */
    CONFIG_SCANNER_USB,     /* usb:VID:PID[:SERIAL], then ,key=value...: a HID scanner */
    CONFIG_SCANNER_SERIAL,  /* serial:PATH or serial:usb=VID:PID, then ,key=value... */
} config_scanner_kind_t;

/* One network of a TCP scanner's allow= list: family AF_INET or AF_INET6. */
typedef struct {
    int family;
    uint8_t addr[16];       /* network address, host bits zero (4 bytes used for IPv4) */
    unsigned prefix;        /* 0..32 or 0..128 */
} config_cidr_t;

/* One `key=value` of a scanner's options, validated (config_scanner_option). */
typedef struct {
    char *key;
    char *value;
} config_option_t;

/*
 * A `scanner = ...` line, validated. Only the fields of its kind are set; the others
 * are 0 / NULL.
 */
typedef struct {
    config_scanner_kind_t kind;
    char *spec;             /* as written, "tcp:127.0.0.1:7790": for messages and events */
    const char *arg;        /* inside spec: everything after "KIND:" */
    int line;               /* line of the config, for the daemon's own messages */

    /* tcp */
    char *host;             /* "127.0.0.1", "localhost", or an IPv6 literal without [] */
    uint16_t port;          /* 1..65535 */
    bool loopback;          /* host is 127.x.x.x, ::1 or localhost */
    config_cidr_t *allow;   /* allow=: the peers it accepts; NULL: every peer (loopback) */
    size_t nallow;

    /* usb, and serial found by usb=VID:PID */
    uint16_t vid, pid;
    char *usb_serial;       /* usb: the device's serial number, NULL for any */

    /* serial */
    char *path;             /* absolute device path, NULL when found by usb=VID:PID */

    /* usb and serial: ",key=value..." after the device */
    char *options;          /* raw text after the first ',', NULL when none */
    config_option_t *opts;  /* the same, split and validated */
    size_t nopts;
} config_scanner_t;

typedef enum { CONFIG_LABEL_ZPL, CONFIG_LABEL_PDF } config_label_format_t;
typedef enum { CONFIG_LABEL_4X6, CONFIG_LABEL_2X1 } config_label_size_t;

typedef struct {
    char *name;             /* unique, [A-Za-z0-9_.-]{1,32} */
    int line;               /* line of its [station NAME] header */
    config_scanner_t *scanners;
    size_t nscanners;       /* at least 1 */
    char *printer;          /* CUPS queue, NULL when the station has none */
    config_label_format_t label_format;  /* default ZPL */
    config_label_size_t label_size;      /* default 4x6 in */
    int label_dpi;                       /* 203 (default) or 300 */
} config_station_t;

/* [forward]: the events forwarded to a NATS JetStream stream (daemon/forward.h). */
typedef struct {
    char **servers;         /* nats://HOST:PORT (or tls://), at least one */
    size_t nservers;
    char *site;             /* a NATS subject token: [A-Za-z0-9_-]{1,64} */
    char *stream;           /* a stream name: [A-Za-z0-9_-]{1,32}; default "RMAD" */
    char *subject_prefix;   /* dot-separated tokens; default "rmad" */
    unsigned max_inflight;  /* 1..65536; default 256 */
    char *creds;            /* absolute paths; NULL when not set */
    char *nkey;             /* the user's public nkey (with nkey_seed) */
    char *nkey_seed;
    char *tls_ca;
    char *tls_cert;         /* with tls_key */
    char *tls_key;
    bool tls;               /* tls = on, or implied by any tls_* key */
    bool rma_feed;          /* rma_feed = yes: RMAs from <prefix>.<site>.rma.upsert */
    char *rma_consumer;     /* its durable consumer; default "rmad-<site>" with rma_feed */
    int line;               /* line of [forward] */
} config_forward_t;

typedef struct {
    char *source;           /* file name (or the name given to config_parse) */

    /* [daemon], all absolute paths after resolution */
    char *database;         /* SQLite file */
    char *policies;         /* directory of vendor policies */
    char *local_policies;   /* local overrides (policyset_load_dirs); NULL: none */
    char *pub;              /* ZeroMQ endpoints: tcp://HOST:PORT or ipc://PATH */
    char *replay;
    char *control;          /* ipc:// only */
    int log_level;          /* syslog priority, LOG_ERR..LOG_DEBUG; default LOG_INFO */
    int64_t double_read_ms; /* default 1500 */
    size_t max_scan_len;    /* default 512 */
    char *rma_pattern;      /* POSIX ERE, known to compile; default below */
    int64_t heartbeat_ms;       /* bus.heartbeat interval on PUB, 0 off; 5000 */
    int64_t print_retry_ms;     /* first delay after a failed print, doubling; 2000 */
    int64_t print_retry_max_ms; /* longest delay between attempts; 60000 */
    char *timezone;         /* IANA name with a zone file, e.g. "Europe/Berlin"; NULL:
                             * the system's zone (TZ, else /etc/localtime) */
    char *http_host;        /* web server address as written, without []; NULL: no server */
    uint16_t http_port;
    bool http_loopback;     /* http_host is 127.x.x.x, ::1 or localhost */
    char *http_password_file;  /* absolute; NULL: no supervisor password (loopback only) */
    char *web_root;         /* absolute directory of the static files, always set */
    char *control_group;    /* group given the control socket file; NULL: the process's */
    char *curve_secret_key; /* absolute; NULL: no CURVE (then both are NULL) */
    char *curve_allowed_clients;  /* absolute directory of allowed *.pub client keys */
    int retain_days;        /* 0: keep everything (default); else 1..36500 */
    char **retain_subscribers;    /* names whose unacknowledged events are kept */
    size_t nretain_subscribers;

    config_station_t *stations;
    size_t nstations;       /* at least 1 */

    config_forward_t *forward;  /* [forward]; NULL when the section is absent */
} config_t;

/* Longest name in retain_subscribers (and in a replay acknowledgement). */
#define CONFIG_SUBSCRIBER_MAX 64

#define CONFIG_DEFAULT_RMA_PATTERN "^RMA-?[0-9A-Z]{4,20}$"

/* Where `make install` puts web/ (the Makefile passes -DCONFIG_WEB_ROOT=...). */
#ifndef CONFIG_WEB_ROOT
#define CONFIG_WEB_ROOT "/usr/share/rmad/web"
#endif

/*
 * Read and parse the file at path. Relative paths in it are resolved against the
 * file's directory (made absolute with realpath). Returns 0 and sets *out, or:
 * -EINVAL for a bad config (*errmsg = "PATH:LINE: message"), -errno when the file
 * cannot be read (*errmsg = "PATH: strerror"), -EFBIG beyond 1 MiB, -ENOMEM.
 * errmsg may be NULL; *errmsg is malloc'd (caller frees) and stays NULL on success.
 */
int config_load(const char *path, config_t **out, char **errmsg);

/*
 * Parse len bytes of text (NUL bytes inside are an error, so the length is explicit).
 * name is used in messages ("NAME:LINE: message") and as config_t.source. Relative
 * paths are resolved against base_dir, or against the current directory when base_dir
 * is NULL; a relative base_dir is itself taken from the current directory. Returns 0
 * and sets *out, -EINVAL with *errmsg set, or -ENOMEM.
 */
int config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                 config_t **out, char **errmsg);

/*
 * Make cfg's timezone the process's local zone (TZ, then tzset) so that every local
 * time the process shows, the time on a label above all, is the dock's. Without a
 * timezone key the process keeps the system's zone. rmad and rmactl both call it
 * right after loading the config, so a preview shows the printed time. setenv is not
 * thread-safe: call it before any thread starts. Returns 0 or -ENOMEM.
 */
int config_timezone_apply(const config_t *cfg);

/* Free a config. Accepts NULL and clears the pointer. */
void config_destroy(config_t **cfg_p);

/*
 * The default configuration built into rmad (for `make run`): database under state/,
 * policies/, the default endpoints, station dock1 with a scanner on
 * tcp:127.0.0.1:7790 (type scans with `nc 127.0.0.1 7790`) and printer dock1-labels.
 * Its relative paths are meant for base_dir = the repository root. Static text.
 */
const char *config_default_text(void);

/*
 * The built-in default config, parsed with its relative paths resolved against the
 * repository root rmad was built in (build_source_root()), so rmad --default-config
 * and rmactl find the same database and control socket from any directory. Returns
 * as config_parse.
 */
int config_load_default(config_t **out, char **errmsg);

/*
 * Value of a scanner option, or NULL when not given. Options, checked by the parser:
 *   serial: baud=50..4000000, parity=none|odd|even, bits=7|8, stop=1|2,
 *           flow=none|rtscts|xonxoff
 *   usb:    layout=LAYOUT[(VARIANT)] (keyboard-wedge layout: an XKB name, us, de, fr,
 *           ch(fr), ...), alt=yes|no (the scanner types Alt + keypad codes),
 *           detach=yes|no (detach the kernel's HID driver to claim the scanner)
 *   both:   eol=required|none (whether the scanner ends each scan with CR/LF/Enter),
 *           eol_ms=10..60000 (silence that ends a scan when eol=none, and after which a
 *           pending unterminated scan is rejected when eol=required)
 *   serial: feedback_ok=, feedback_reject=, feedback_double= (bytes written back to
 *           the scanner for each answer, in config_unescape()'s notation)
 *   tcp:    idle_timeout=0..86400 (seconds without a byte after which a client is
 *           closed; 0: never; default SCANNER_TCP_IDLE_TIMEOUT_S)
 *   tcp:    allow=CIDR[;CIDR...] (IPv4 or IPv6 networks, a bare address is one host:
 *           the peers that may connect; parsed into config_scanner_t.allow)
 * Defaults are the drivers' (drivers/scanner.h).
 */
const char *config_scanner_option(const config_scanner_t *s, const char *key);

/*
 * Whether addr (family AF_INET: 4 bytes, AF_INET6: 16 bytes) is inside one of the
 * networks. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as an IPv6 listener sees an
 * IPv4 peer) is matched as the IPv4 address.
 */
bool config_cidr_match(const config_cidr_t *nets, size_t n, int family, const uint8_t *addr);

/* Longest feedback_* value, in bytes. */
#define CONFIG_FEEDBACK_MAX 32

/*
 * Bytes from a config value: printable characters as they are, and \xHH, \r, \n, \t,
 * \e (ESC) and \\ (a ',' of an option value is \x2c, a ';' \x3b). At most
 * CONFIG_FEEDBACK_MAX bytes. Writes them to out (that many bytes; NULL: only count)
 * and sets *len. Returns 0, or -EINVAL with *why a static reason.
 */
int config_unescape(const char *text, uint8_t *out, size_t *len, const char **why);

#endif
