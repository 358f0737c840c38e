/*
 * The daemon's INI config: a full valid file, every class of error with its exact
 * "FILE:LINE: message", relative paths resolved against the file's directory from any
 * cwd, and the built-in default config.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/build.h"
#include "labels/label.h"
#include "tests/helpers.h"
#include "tests/suites.h"

/* The smallest valid config; error cases below are built around it. */
#define DAEMON_OK                        \
    "[daemon]\n"                         \
    "database = /var/lib/rmad/rmad.db\n" \
    "policies = /usr/share/rmad/policies\n" \
    "pub = tcp://127.0.0.1:7781\n"       \
    "replay = tcp://127.0.0.1:7782\n"    \
    "control = ipc:///run/rmad/rmad.ctl\n"

#define STATION_OK     \
    "[station dock1]\n" \
    "scanner = tcp:127.0.0.1:7790\n"

static config_t *parse_ok(const char *text, const char *base)
{
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = config_parse(text, strlen(text), "t.conf", base, &cfg, &err);
    if (rc != 0)
        fprintf(stderr, "\nunexpected config error: %s\n", err ? err : "(none)");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(err);
    free(err);
    return cfg;
}

/* The text must fail with exactly this message; *out stays untouched. */
static void expect_error_len(const char *text, size_t len, const char *want)
{
    config_t *cfg = (config_t *)&cfg; /* a sentinel: output parameters set only on success */
    char *err = NULL;
    CU_ASSERT_EQUAL(config_parse(text, len, "t.conf", "/base", &cfg, &err), -EINVAL);
    CU_ASSERT_PTR_EQUAL(cfg, (config_t *)&cfg);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err && strcmp(err, want) != 0)
        fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
    if (err)
        CU_ASSERT_STRING_EQUAL(err, want);
    free(err);
}

static void expect_error(const char *text, const char *want)
{
    expect_error_len(text, strlen(text), want);
}

static void test_valid_file(void)
{
    const char *text =
        "\xEF\xBB\xBF; rmad.conf for the north dock\n"
        "# both comment styles\n"
        "[daemon]\n"
        "database = data/rmad.db ; relative: next to this file\n"
        "policies=/usr/share/rmad/policies\n"
        "pub      = tcp://*:7781\n"
        "replay   = tcp://[::1]:7782\n"
        "control  = ipc://run/rmad.ctl\r\n"
        "log_level = debug\n"
        "double_read_ms = 0\n"
        "max_scan_len = 2048\n"
        "rma_pattern = ^R#[0-9]+$\n"
        "curve_secret_key = keys/server.key ; pub off loopback needs CURVE\n"
        "curve_allowed_clients = clients\n"
        "  [ station dock-1.a ]  ; indented header\n"
        "scanner = tcp:0.0.0.0:7790,allow=10.1.0.0/16;192.168.7.9;fd00::/8\n"
        "scanner = usb:05E0:1200:SN42#xyz  # a '#' inside a value is kept\n"
        "scanner = serial:/dev/ttyACM0,baud=9600,parity=none,bits=8,stop=1,flow=rtscts\n"
        "printer = dock1-labels\n"
        "label_format = pdf\n"
        "label_size = 2x1\n"
        "label_dpi = 300\n"
        "[station dock2]\n"
        "scanner = serial:usb=0c2e:0b61\n"
        "scanner = tcp:localhost:7791\n"
        "scanner = usb:05e0:1200:ABC,layout=de,detach=no,eol=none,eol_ms=50\n"
        "scanner = usb:05e0:1201,layout=ch(fr),alt=yes\n";
    config_t *cfg = parse_ok(text, "/etc/rmad");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->source, "t.conf");
    CU_ASSERT_STRING_EQUAL(cfg->database, "/etc/rmad/data/rmad.db");
    CU_ASSERT_STRING_EQUAL(cfg->policies, "/usr/share/rmad/policies");
    CU_ASSERT_STRING_EQUAL(cfg->pub, "tcp://*:7781");
    CU_ASSERT_STRING_EQUAL(cfg->replay, "tcp://[::1]:7782");
    CU_ASSERT_STRING_EQUAL(cfg->control, "ipc:///etc/rmad/run/rmad.ctl");
    CU_ASSERT_EQUAL(cfg->log_level, LOG_DEBUG);
    CU_ASSERT_EQUAL(cfg->double_read_ms, 0);
    CU_ASSERT_EQUAL(cfg->max_scan_len, 2048);
    CU_ASSERT_STRING_EQUAL(cfg->rma_pattern, "^R#[0-9]+$");
    CU_ASSERT_STRING_EQUAL(cfg->curve_secret_key, "/etc/rmad/keys/server.key");
    CU_ASSERT_STRING_EQUAL(cfg->curve_allowed_clients, "/etc/rmad/clients");
    CU_ASSERT_EQUAL_FATAL(cfg->nstations, 2);

    const config_station_t *st = &cfg->stations[0];
    CU_ASSERT_STRING_EQUAL(st->name, "dock-1.a");
    CU_ASSERT_EQUAL(st->line, 15);
    CU_ASSERT_STRING_EQUAL(st->printer, "dock1-labels");
    CU_ASSERT_EQUAL(st->label_format, CONFIG_LABEL_PDF);
    CU_ASSERT_EQUAL(st->label_size, CONFIG_LABEL_2X1);
    CU_ASSERT_EQUAL(st->label_dpi, 300);
    CU_ASSERT_EQUAL(cfg->stations[1].label_format, CONFIG_LABEL_ZPL);
    CU_ASSERT_EQUAL(cfg->stations[1].label_size, CONFIG_LABEL_4X6);
    CU_ASSERT_EQUAL(cfg->stations[1].label_dpi, 203);
    CU_ASSERT_EQUAL(cfg->print_retry_ms, 2000);
    CU_ASSERT_EQUAL(cfg->print_retry_max_ms, 60000);
    CU_ASSERT_EQUAL_FATAL(st->nscanners, 3);
    const config_scanner_t *s = &st->scanners[0];
    CU_ASSERT_EQUAL(s->kind, CONFIG_SCANNER_TCP);
    CU_ASSERT_STRING_EQUAL(s->spec, "tcp:0.0.0.0:7790,allow=10.1.0.0/16;192.168.7.9;fd00::/8");
    CU_ASSERT_STRING_EQUAL(s->host, "0.0.0.0");
    CU_ASSERT_EQUAL(s->port, 7790);
    CU_ASSERT_EQUAL(s->line, 16);
    CU_ASSERT_FALSE(s->loopback);
    CU_ASSERT_EQUAL_FATAL(s->nallow, 3);
    CU_ASSERT_EQUAL(s->allow[0].family, AF_INET);
    CU_ASSERT_EQUAL(s->allow[0].prefix, 16);
    CU_ASSERT_EQUAL(s->allow[1].prefix, 32);
    CU_ASSERT_EQUAL(s->allow[2].family, AF_INET6);
    CU_ASSERT_EQUAL(s->allow[2].prefix, 8);
    CU_ASSERT_TRUE(cfg->stations[1].scanners[1].loopback);
    s = &st->scanners[1];
    CU_ASSERT_EQUAL(s->kind, CONFIG_SCANNER_USB);
    CU_ASSERT_EQUAL(s->vid, 0x05e0);
    CU_ASSERT_EQUAL(s->pid, 0x1200);
    CU_ASSERT_STRING_EQUAL(s->usb_serial, "SN42#xyz");
    s = &st->scanners[2];
    CU_ASSERT_EQUAL(s->kind, CONFIG_SCANNER_SERIAL);
    CU_ASSERT_STRING_EQUAL(s->path, "/dev/ttyACM0");
    CU_ASSERT_STRING_EQUAL(s->options, "baud=9600,parity=none,bits=8,stop=1,flow=rtscts");
    CU_ASSERT_EQUAL(s->nopts, 5);
    CU_ASSERT_STRING_EQUAL(config_scanner_option(s, "baud"), "9600");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(s, "flow"), "rtscts");
    CU_ASSERT_PTR_NULL(config_scanner_option(s, "speed"));

    st = &cfg->stations[1];
    CU_ASSERT_STRING_EQUAL(st->name, "dock2");
    CU_ASSERT_PTR_NULL(st->printer);
    CU_ASSERT_EQUAL_FATAL(st->nscanners, 4);
    s = &st->scanners[0];
    CU_ASSERT_EQUAL(s->kind, CONFIG_SCANNER_SERIAL);
    CU_ASSERT_PTR_NULL(s->path);
    CU_ASSERT_PTR_NULL(s->options);
    CU_ASSERT_EQUAL(s->vid, 0x0c2e);
    CU_ASSERT_EQUAL(s->pid, 0x0b61);
    CU_ASSERT_STRING_EQUAL(st->scanners[1].host, "localhost");
    CU_ASSERT_STRING_EQUAL(st->scanners[2].usb_serial, "ABC");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[2], "layout"), "de");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[2], "detach"), "no");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[2], "eol"), "none");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[2], "eol_ms"), "50");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[3], "layout"), "ch(fr)");
    CU_ASSERT_STRING_EQUAL(config_scanner_option(&st->scanners[3], "alt"), "yes");
    config_destroy(&cfg);
    CU_ASSERT_PTR_NULL(cfg);
    config_destroy(&cfg);
    config_destroy(NULL);
}

static void test_defaults(void)
{
    config_t *cfg = parse_ok(DAEMON_OK STATION_OK, "/base");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->log_level, LOG_INFO);
    CU_ASSERT_EQUAL(cfg->double_read_ms, 1500);
    CU_ASSERT_EQUAL(cfg->max_scan_len, 512);
    CU_ASSERT_STRING_EQUAL(cfg->rma_pattern, "^RMA-?[0-9A-Z]{4,20}$");
    CU_ASSERT_STRING_EQUAL(cfg->control, "ipc:///run/rmad/rmad.ctl");
    CU_ASSERT_PTR_NULL(cfg->timezone); /* the system's zone */
    CU_ASSERT_EQUAL(cfg->nstations, 1);
    config_destroy(&cfg);

    /* Abstract sockets have no path to resolve; a relative ipc path for pub does. */
    cfg = parse_ok("[daemon]\ndatabase = d\npolicies = p\npub = ipc://pub.sock\n"
                   "replay = ipc://@rmad-replay\ncontrol = ipc://c\n" STATION_OK,
                   "/srv/rmad/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->database, "/srv/rmad/d");
    CU_ASSERT_STRING_EQUAL(cfg->pub, "ipc:///srv/rmad/pub.sock");
    CU_ASSERT_STRING_EQUAL(cfg->replay, "ipc://@rmad-replay");
    config_destroy(&cfg);

    /* Without a base directory, relative paths follow the current directory. */
    char *cwd = getcwd(NULL, 0), *want = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(cwd);
    CU_ASSERT_FATAL(asprintf(&want, "%s/state/x.db", strcmp(cwd, "/") ? cwd : "") > 0);
    cfg = parse_ok("[daemon]\ndatabase = state/x.db\npolicies = p\npub = tcp://127.0.0.1:1\n"
                   "replay = tcp://127.0.0.1:2\ncontrol = ipc:///c\n" STATION_OK,
                   NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->database, want);
    config_destroy(&cfg);
    free(want);
    free(cwd);
}

static void test_default_text(void)
{
    const char *text = config_default_text();
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    config_t *cfg = parse_ok(text, "/src/rmad");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->database, "/src/rmad/state/rmad.db");
    CU_ASSERT_STRING_EQUAL(cfg->policies, "/src/rmad/policies");
    CU_ASSERT_STRING_EQUAL(cfg->pub, "tcp://127.0.0.1:7781");
    CU_ASSERT_STRING_EQUAL(cfg->replay, "tcp://127.0.0.1:7782");
    CU_ASSERT_STRING_EQUAL(cfg->control, "ipc:///src/rmad/state/rmad.ctl");
    CU_ASSERT_EQUAL_FATAL(cfg->nstations, 1);
    CU_ASSERT_STRING_EQUAL(cfg->stations[0].name, "dock1");
    CU_ASSERT_STRING_EQUAL(cfg->stations[0].printer, "dock1-labels");
    CU_ASSERT_EQUAL_FATAL(cfg->stations[0].nscanners, 1);
    CU_ASSERT_STRING_EQUAL(cfg->stations[0].scanners[0].spec, "tcp:127.0.0.1:7790");
    config_destroy(&cfg);
}

/* The dock's zone: a real IANA name, and labels then show that local time. */
static void test_timezone(void)
{
    config_t *cfg = parse_ok(DAEMON_OK "timezone = America/New_York\n" STATION_OK, "/base");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->timezone, "America/New_York");

    const char *old = getenv("TZ");
    char *saved = old ? th_strdup(old) : NULL, when[64];
    CU_ASSERT_EQUAL(config_timezone_apply(cfg), 0);
    ASSERT_STR(getenv("TZ"), "America/New_York");
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38.436Z", when, sizeof(when)), 0);
    ASSERT_STR(when, "2026-11-21 01:15 EST");
    config_destroy(&cfg);

    cfg = parse_ok(DAEMON_OK "timezone = UTC\n" STATION_OK, "/base");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(config_timezone_apply(cfg), 0);
    CU_ASSERT_EQUAL(label_time_words("2026-11-21T06:15:38.436Z", when, sizeof(when)), 0);
    ASSERT_STR(when, "2026-11-21 06:15 UTC");
    config_destroy(&cfg);

    /* No key: the process keeps the zone it has. */
    cfg = parse_ok(DAEMON_OK STATION_OK, "/base");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(config_timezone_apply(cfg), 0);
    ASSERT_STR(getenv("TZ"), "UTC");
    config_destroy(&cfg);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);

    /* A typo would print every label in UTC without a word: refused at load. */
    expect_error(DAEMON_OK "timezone = Europe/Berln\n" STATION_OK,
                 "t.conf:7: timezone 'Europe/Berln': no such time zone (not a zone file under "
                 "the system's zoneinfo; `timedatectl list-timezones` lists them)");
    expect_error(DAEMON_OK "timezone = CET+1\n" STATION_OK,
                 "t.conf:7: timezone 'CET+1': no such time zone (not a zone file under "
                 "the system's zoneinfo; `timedatectl list-timezones` lists them)");
    expect_error(DAEMON_OK "timezone = ../../etc/passwd\n" STATION_OK,
                 "t.conf:7: timezone '../../etc/passwd': expected an IANA time zone name such "
                 "as Europe/Berlin or UTC");
    expect_error(DAEMON_OK "timezone = /etc/localtime\n" STATION_OK,
                 "t.conf:7: timezone '/etc/localtime': expected an IANA time zone name such "
                 "as Europe/Berlin or UTC");
    expect_error(DAEMON_OK "timezone = Europe/Berlin\ntimezone = UTC\n" STATION_OK,
                 "t.conf:8: duplicate key 'timezone' in [daemon] (first on line 7)");
    /* A directory of zones is not a zone. */
    expect_error(DAEMON_OK "timezone = Europe\n" STATION_OK,
                 "t.conf:7: timezone 'Europe': no such time zone (not a zone file under "
                 "the system's zoneinfo; `timedatectl list-timezones` lists them)");
}

static void test_syntax_errors(void)
{
    expect_error("[daemon\n", "t.conf:1: expected ']' at the end of section header '[daemon'");
    expect_error("[stations]\n", "t.conf:1: unknown section [stations]");
    expect_error("; hello\ndatabase = x\n",
                 "t.conf:2: key 'database' outside a section "
                 "(expected [daemon] or [station NAME] first)");
    expect_error("[daemon]\ndatabase state/rmad.db\n",
                 "t.conf:2: missing '=' in 'database state/rmad.db' (expected KEY = VALUE)");
    expect_error("[daemon]\n = x\n", "t.conf:2: missing key before '='");
    expect_error("[daemon]\ndatabase =   ; nothing\n", "t.conf:2: empty value for 'database'");
    expect_error(DAEMON_OK "[daemon]\n", "t.conf:7: duplicate section [daemon] (first on line 1)");
    expect_error(DAEMON_OK STATION_OK "[station]\n",
                 "t.conf:9: missing station name (expected [station NAME])");
    expect_error(DAEMON_OK "[station dock 1]\n",
                 "t.conf:7: bad station name 'dock 1' (expected 1 to 32 of A-Z a-z 0-9 _ . -)");
    expect_error(DAEMON_OK "[station abcdefghijklmnopqrstuvwxyz0123456]\n",
                 "t.conf:7: bad station name 'abcdefghijklmnopqrstuvwxyz0123456' "
                 "(expected 1 to 32 of A-Z a-z 0-9 _ . -)");
    expect_error(DAEMON_OK STATION_OK "[station dock1]\n",
                 "t.conf:9: duplicate station 'dock1' (first on line 7)");

    /* A line over 4096 bytes, on line 2. */
    size_t n = 4097;
    char *big = malloc(n + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    strcpy(big, "[daemon]\n");
    memset(big + 9, ';', n);
    strcpy(big + 9 + n, "\n");
    expect_error(big, "t.conf:2: line longer than 4096 bytes");
    /* Exactly 4096 bytes (a comment) is fine up to the missing keys. */
    strcpy(big + 9 + 4096, "\n");
    expect_error(big, "t.conf:1: missing key 'database' in [daemon]");
    free(big);

    static const char nul[] = "[daemon]\ndatabase = a\0b\n";
    expect_error_len(nul, sizeof(nul) - 1, "t.conf:2: NUL byte");
}

static void test_key_errors(void)
{
    expect_error("[daemon]\ndatabse = x\n", "t.conf:2: unknown key 'databse' in [daemon]");
    expect_error("[daemon]\nlabel_format = zpl\n",
                 "t.conf:2: unknown key 'label_format' in [daemon]");
    expect_error(DAEMON_OK "database = /other.db\n",
                 "t.conf:7: duplicate key 'database' in [daemon] (first on line 2)");
    expect_error(DAEMON_OK STATION_OK "scaner = tcp:127.0.0.1:7791\n",
                 "t.conf:9: unknown key 'scaner' in [station dock1]");
    expect_error(DAEMON_OK STATION_OK "label = zpl\n",
                 "t.conf:9: unknown key 'label' in [station dock1]");
    expect_error(DAEMON_OK STATION_OK "printer = a\nprinter = b\n",
                 "t.conf:10: duplicate key 'printer' in [station dock1] (first on line 9)");
    expect_error(DAEMON_OK STATION_OK "label_dpi = 300\nlabel_dpi = 203\n",
                 "t.conf:10: duplicate key 'label_dpi' in [station dock1] (first on line 9)");
    expect_error(DAEMON_OK STATION_OK "label_format = ps\n",
                 "t.conf:9: label_format 'ps': expected zpl or pdf");
    expect_error(DAEMON_OK STATION_OK "label_size = A4\n",
                 "t.conf:9: label_size 'A4': expected 4x6 or 2x1 (inches)");
    expect_error(DAEMON_OK STATION_OK "label_dpi = 600\n",
                 "t.conf:9: label_dpi '600': expected 203 or 300");
    expect_error("[daemon]\nprint_retry_ms = 50\n",
                 "t.conf:2: print_retry_ms '50': expected an integer from 100 to 3600000");
    expect_error(DAEMON_OK "print_retry_ms = 5000\nprint_retry_max_ms = 1000\n" STATION_OK,
                 "t.conf:8: print_retry_max_ms 1000 is less than print_retry_ms 5000");
}

static void test_missing(void)
{
    expect_error("[daemon]\n"
                 "database = x\npolicies = y\npub = tcp://127.0.0.1:1\nreplay = tcp://127.0.0.1:2\n"
                 STATION_OK,
                 "t.conf:1: missing key 'control' in [daemon]");
    expect_error(STATION_OK, "t.conf:2: missing section [daemon]");
    expect_error("", "t.conf:1: missing section [daemon]");
    expect_error(DAEMON_OK "\n; no station\n",
                 "t.conf:8: missing section [station NAME] (at least one station)");
    expect_error(DAEMON_OK "[station dock1]\nprinter = p\n[station dock2]\n",
                 "t.conf:7: missing key 'scanner' in [station dock1]");
    expect_error(DAEMON_OK STATION_OK "[station dock2]\n",
                 "t.conf:9: missing key 'scanner' in [station dock2]");
}

static void test_daemon_values(void)
{
    const char *pre = "[daemon]\n";
    struct { const char *line, *msg; } cases[] = {
        { "log_level = loud",
          "t.conf:2: log_level 'loud': expected err, warning, notice, info or debug" },
        { "log_level = INFO",
          "t.conf:2: log_level 'INFO': expected err, warning, notice, info or debug" },
        { "double_read_ms = -1", "t.conf:2: double_read_ms '-1': expected an integer from 0 to 60000" },
        { "double_read_ms = 60001",
          "t.conf:2: double_read_ms '60001': expected an integer from 0 to 60000" },
        { "double_read_ms = 1.5s",
          "t.conf:2: double_read_ms '1.5s': expected an integer from 0 to 60000" },
        { "max_scan_len = 0", "t.conf:2: max_scan_len '0': expected an integer from 1 to 65536" },
        { "max_scan_len = 99999999999999999999999",
          "t.conf:2: max_scan_len '99999999999999999999999': expected an integer from 1 to 65536" },
        { "pub = udp://127.0.0.1:1",
          "t.conf:2: pub 'udp://127.0.0.1:1': expected tcp://HOST:PORT or ipc://PATH" },
        { "pub = tcp://127.0.0.1:0", "t.conf:2: pub 'tcp://127.0.0.1:0': port out of range" },
        { "pub = tcp://127.0.0.1", "t.conf:2: pub 'tcp://127.0.0.1': expected HOST:PORT" },
        { "pub = tcp://:7781",
          "t.conf:2: pub 'tcp://:7781': bad host (expected an IPv4 address, localhost, "
          "[IPv6 address] or *)" },
        { "replay = tcp://eth0:7782",
          "t.conf:2: replay 'tcp://eth0:7782': bad host (expected an IPv4 address, localhost, "
          "[IPv6 address] or *)" },
        { "replay = tcp://[::g]:7782", "t.conf:2: replay 'tcp://[::g]:7782': bad IPv6 address" },
        { "replay = tcp://1.2.3.4:77x", "t.conf:2: replay 'tcp://1.2.3.4:77x': bad port (expected 1 to 65535)" },
        { "control = tcp://127.0.0.1:7783",
          "t.conf:2: control 'tcp://127.0.0.1:7783': expected ipc://PATH" },
        { "control = ipc://", "t.conf:2: control 'ipc://': empty ipc path" },
        { "rma_pattern = ^RMA-(", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "%s%s\n", pre, cases[i].line);
        if (cases[i].msg) {
            expect_error(text, cases[i].msg);
            continue;
        }
        /* regerror's wording belongs to libc: check our part of the message only. */
        config_t *cfg = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL(config_parse(text, strlen(text), "t.conf", "/", &cfg, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_NSTRING_EQUAL(err, "t.conf:2: rma_pattern '^RMA-(': ", 32);
        CU_ASSERT(strlen(err) > 32);
        free(err);
    }

    /* A socket path that bind() would refuse. */
    char text[512];
    snprintf(text, sizeof(text), "[daemon]\ncontrol = ipc://%0120d\n", 0);
    char want[512];
    snprintf(want, sizeof(want), "t.conf:2: control 'ipc://%0*d...': socket path longer than 107 bytes",
             64 - 6, 0);
    expect_error(text, want);
}

static void test_scanner_values(void)
{
    struct { const char *spec, *why; } cases[] = {
        { "tcp:1.2.3.4:99999", "port out of range" },
        { "tcp:1.2.3.4:0", "port out of range" },
        { "tcp:1.2.3.4:", "bad port (expected 1 to 65535)" },
        { "tcp:7790", "expected HOST:PORT" },
        { "tcp:*:7790", "bad host (expected an IPv4 address, localhost or [IPv6 address])" },
        { "tcp:1.2.3:7790", "bad host (expected an IPv4 address, localhost or [IPv6 address])" },
        { "tcp:scanner.local:7790",
          "bad host (expected an IPv4 address, localhost or [IPv6 address])" },
        { "tcp:::1:7790", "bad host (expected an IPv4 address, localhost or [IPv6 address])" },
        { "tcp:[::1]7790", "expected [IPV6]:PORT" },
        { "usb:05e0", "expected usb:VID:PID[:SERIAL]" },
        { "usb:5e0:1200", "VID must be 4 hex digits" },
        { "usb:05e0:12g0", "PID must be 4 hex digits" },
        { "usb:05e0:1200:", "serial number must be 1 to 126 printable ASCII characters, no spaces" },
        { "serial:", "expected serial:PATH or serial:usb=VID:PID" },
        { "serial:ttyACM0", "device path must be absolute (or usb=VID:PID)" },
        { "serial:usb=0c2e", "expected usb=VID:PID with 4 hex digits each" },
        { "serial:usb=0c2e:b61", "expected usb=VID:PID with 4 hex digits each" },
        { "serial:/dev/ttyS0,", "empty option" },
        { "serial:/dev/ttyS0,baud=9600,,bits=8", "empty option" },
        { "serial:/dev/ttyS0,baud", "option 'baud': expected key=value" },
        { "serial:/dev/ttyS0,speed=9600",
          "unknown option 'speed' (expected baud, parity, bits, stop, flow, eol, eol_ms, "
          "feedback_ok, feedback_reject, feedback_double, rate or burst)" },
        { "serial:/dev/ttyS0,layout=us",
          "unknown option 'layout' (expected baud, parity, bits, stop, flow, eol, eol_ms, "
          "feedback_ok, feedback_reject, feedback_double, rate or burst)" },
        { "serial:/dev/ttyS0,feedback_ok=\\q", "option feedback_ok=\\q: unknown escape (expected "
                                             "\\xHH, \\r, \\n, \\t, \\e or \\\\)" },
        { "serial:/dev/ttyS0,feedback_reject=\\x7", "option feedback_reject=\\x7: \\x takes two "
                                                  "hex digits" },
        { "usb:05e0:1200,feedback_ok=\\x07",
          "unknown option 'feedback_ok' (expected layout, alt, detach, eol, eol_ms, rate or burst)" },
        { "usb:05e0:1200,baud=9600",
          "unknown option 'baud' (expected layout, alt, detach, eol, eol_ms, rate or burst)" },
        { "usb:05e0:1200:SN1,layout=xx",
          "option layout=xx: no such XKB layout; XKB layouts and variants are listed in "
          "/usr/share/X11/xkb/rules/evdev.lst (or by `localectl list-x11-keymap-layouts` and "
          "`localectl list-x11-keymap-variants LAYOUT`)" },
        { "usb:05e0:1200:SN1,layout=fr(nosuch)",
          "option layout=fr(nosuch): XKB layout fr has no variant nosuch; XKB layouts and "
          "variants are listed in /usr/share/X11/xkb/rules/evdev.lst (or by `localectl "
          "list-x11-keymap-layouts` and `localectl list-x11-keymap-variants LAYOUT`)" },
        { "usb:05e0:1200,layout=fr(", "option layout=fr(: expected LAYOUT or LAYOUT(VARIANT), "
                                     "such as fr or ch(fr)" },
        { "usb:05e0:1200,layout=../fr", "option layout=../fr: no such XKB layout; XKB layouts "
          "and variants are listed in /usr/share/X11/xkb/rules/evdev.lst (or by `localectl "
          "list-x11-keymap-layouts` and `localectl list-x11-keymap-variants LAYOUT`)" },
        { "usb:05e0:1200,alt=maybe", "option alt=maybe: expected one of yes|no" },
        { "usb:05e0:1200,detach=maybe", "option detach=maybe: expected one of yes|no" },
        { "usb:05e0:1200,eol_ms=5", "option eol_ms=5: expected an integer from 10 to 60000" },
        { "usb:05e0:1200,", "empty option" },
        { "usb:05e0:1200:,layout=us",
          "serial number must be 1 to 126 printable ASCII characters, no spaces" },
        { "serial:/dev/ttyS0,baud=fast", "option baud=fast: expected an integer from 50 to 4000000" },
        { "serial:/dev/ttyS0,baud=9600,baud=19200", "option 'baud' given twice" },
        { "serial:/dev/ttyS0,parity=mark", "option parity=mark: expected one of none|odd|even" },
        { "serial:/dev/ttyS0,bits=9", "option bits=9: expected one of 7|8" },
        { "serial:/dev/ttyS0,stop=3", "option stop=3: expected one of 1|2" },
        { "serial:/dev/ttyS0,flow=hw", "option flow=hw: expected one of none|rtscts|xonxoff" },
        { "hid:05e0:1200", "unknown scanner kind (expected tcp:, usb: or serial:)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512], want[512];
        snprintf(text, sizeof(text), DAEMON_OK "[station dock1]\nscanner = %s\n", cases[i].spec);
        snprintf(want, sizeof(want), "t.conf:8: station 'dock1': scanner '%s': %s", cases[i].spec,
                 cases[i].why);
        expect_error(text, want);
    }
    expect_error(DAEMON_OK STATION_OK "printer = dock 1\n",
                 "t.conf:9: station 'dock1': printer 'dock 1': a CUPS queue name has 1 to 127 "
                 "printable characters, no spaces, '/' or '#'");
}

static void test_conflicts(void)
{
    expect_error(DAEMON_OK STATION_OK "[station dock2]\nscanner = tcp:127.0.0.1:7790\n",
                 "t.conf:10: station 'dock2': scanner 'tcp:127.0.0.1:7790': conflicts with "
                 "scanner 'tcp:127.0.0.1:7790' of station 'dock1' (line 8)");
    expect_error(DAEMON_OK STATION_OK "scanner = tcp:localhost:7790\n",
                 "t.conf:9: station 'dock1': scanner 'tcp:localhost:7790': conflicts with "
                 "scanner 'tcp:127.0.0.1:7790' of station 'dock1' (line 8)");
    expect_error(DAEMON_OK "[station dock1]\nscanner = tcp:0.0.0.0:7781,allow=10.0.0.0/8\n",
                 "t.conf:8: station 'dock1': scanner 'tcp:0.0.0.0:7781,allow=10.0.0.0/8': "
                 "conflicts with pub 'tcp://127.0.0.1:7781' (line 4)");
    expect_error("[daemon]\npub = tcp://127.0.0.1:7781\nreplay = tcp://127.0.0.1:7781\n",
                 "t.conf:3: replay 'tcp://127.0.0.1:7781': conflicts with "
                 "pub 'tcp://127.0.0.1:7781' (line 2)");
    expect_error("[daemon]\npub = ipc:///run/x\ncontrol = ipc:///run/x\n",
                 "t.conf:3: control 'ipc:///run/x': conflicts with pub 'ipc:///run/x' (line 2)");
    expect_error(DAEMON_OK "[station a]\nscanner = usb:05e0:1200\n"
                 "[station b]\nscanner = usb:05E0:1200:XYZ\n",
                 "t.conf:10: station 'b': scanner 'usb:05E0:1200:XYZ': conflicts with "
                 "scanner 'usb:05e0:1200' of station 'a' (line 8)");
    expect_error(DAEMON_OK "[station a]\nscanner = serial:/dev/ttyS0,baud=9600\n"
                 "[station b]\nscanner = serial:/dev/ttyS0\n",
                 "t.conf:10: station 'b': scanner 'serial:/dev/ttyS0': conflicts with "
                 "scanner 'serial:/dev/ttyS0,baud=9600' of station 'a' (line 8)");

    /* Different addresses, serial numbers or kinds do not collide. */
    config_t *cfg = parse_ok(DAEMON_OK "[station a]\nscanner = tcp:127.0.0.1:7790\n"
                             "scanner = tcp:127.0.0.2:7790\n"
                             "scanner = usb:05e0:1200:A\nscanner = usb:05e0:1200:B\n"
                             "scanner = serial:usb=05e0:1200\n",
                             "/");
    CU_ASSERT_PTR_NOT_NULL(cfg);
    config_destroy(&cfg);
}

/* Files: relative paths follow the file, not the cwd; I/O errors. */
static void test_load_relative(void)
{
    char *tmp = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
    char *real = realpath(tmp, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(real);
    char dir[PATH_MAX], file[PATH_MAX + 32], want[2 * PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/etc", tmp);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/rmad.conf", dir);
    CU_ASSERT_EQUAL_FATAL(th_write_file(file,
                                        "[daemon]\n"
                                        "database = state/rmad.db\n"
                                        "policies = ../policies\n"
                                        "pub = tcp://127.0.0.1:7781\n"
                                        "replay = tcp://127.0.0.1:7782\n"
                                        "control = ipc://state/rmad.ctl\n"
                                        "[station dock1]\n"
                                        "scanner = tcp:127.0.0.1:7790\n"),
                          0);

    /* From another directory, by absolute path and by relative path. */
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CU_ASSERT_FATAL(cwd >= 0);
    CU_ASSERT_EQUAL_FATAL(chdir("/"), 0);
    for (int pass = 0; pass < 2; pass++) {
        config_t *cfg = NULL;
        char *err = NULL;
        const char *path = file;
        if (pass == 1) {
            CU_ASSERT_EQUAL(chdir(tmp), 0);
            path = "etc/rmad.conf";
        }
        CU_ASSERT_EQUAL(config_load(path, &cfg, &err), 0);
        CU_ASSERT_PTR_NULL(err);
        CU_ASSERT_PTR_NOT_NULL(cfg);
        if (cfg) {
            CU_ASSERT_STRING_EQUAL(cfg->source, path);
            snprintf(want, sizeof(want), "%s/etc/state/rmad.db", real);
            CU_ASSERT_STRING_EQUAL(cfg->database, want);
            snprintf(want, sizeof(want), "%s/etc/../policies", real);
            CU_ASSERT_STRING_EQUAL(cfg->policies, want);
            snprintf(want, sizeof(want), "ipc://%s/etc/state/rmad.ctl", real);
            CU_ASSERT_STRING_EQUAL(cfg->control, want);
        }
        config_destroy(&cfg);
        free(err);
    }
    CU_ASSERT_EQUAL(fchdir(cwd), 0);
    close(cwd);

    /* An error in a file names the file as given. */
    CU_ASSERT_EQUAL(th_write_file(file, "[daemon]\ndatabse = x\n"), 0);
    config_t *cfg = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL(config_load(file, &cfg, &err), -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    snprintf(want, sizeof(want), "%s:2: unknown key 'databse' in [daemon]", file);
    CU_ASSERT_STRING_EQUAL(err, want);
    free(err);

    /* NUL bytes in a file. */
    FILE *f = fopen(file, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite("[daemon]\n\0\n", 1, 11, f), 11);
    fclose(f);
    err = NULL;
    CU_ASSERT_EQUAL(config_load(file, &cfg, &err), -EINVAL);
    snprintf(want, sizeof(want), "%s:2: NUL byte", file);
    CU_ASSERT_STRING_EQUAL(err, want);
    free(err);

    /* A missing file. */
    snprintf(file, sizeof(file), "%s/nope.conf", tmp);
    err = NULL;
    CU_ASSERT_EQUAL(config_load(file, &cfg, &err), -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", file);
    CU_ASSERT_STRING_EQUAL(err, want);
    free(err);
    CU_ASSERT_PTR_NULL(cfg);

    th_rm_rf(tmp);
    free(real);
    free(tmp);
}

static void test_http_keys(void)
{
    config_t *cfg = parse_ok(DAEMON_OK STATION_OK, "/base");
    CU_ASSERT_PTR_NULL(cfg->http_host);   /* no key: no web server */
    CU_ASSERT_STRING_EQUAL(cfg->web_root, CONFIG_WEB_ROOT);
    config_destroy(&cfg);
    cfg = parse_ok(DAEMON_OK "http = 127.0.0.1:7780\nweb_root = web\n" STATION_OK, "/base");
    CU_ASSERT_STRING_EQUAL(cfg->http_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->http_port, 7780);
    CU_ASSERT(cfg->http_loopback);
    CU_ASSERT_STRING_EQUAL(cfg->web_root, "/base/web");
    CU_ASSERT_PTR_NULL(cfg->http_password_file);
    config_destroy(&cfg);
    cfg = parse_ok(DAEMON_OK "http = off\n" STATION_OK, "/base");
    CU_ASSERT_PTR_NULL(cfg->http_host);
    config_destroy(&cfg);
    cfg = parse_ok(DAEMON_OK "http = 0.0.0.0:8080\nhttp_password_file = pw\n" STATION_OK, "/b");
    CU_ASSERT_FALSE(cfg->http_loopback);
    CU_ASSERT_STRING_EQUAL(cfg->http_password_file, "/b/pw");
    config_destroy(&cfg);
    expect_error(DAEMON_OK "http = 0.0.0.0:8080\n" STATION_OK,
                 "t.conf:7: http '0.0.0.0' is not a loopback address: set http_password_file too");
    expect_error(DAEMON_OK "http = 127.0.0.1:7790\n" STATION_OK,
                 "t.conf:9: station 'dock1': scanner 'tcp:127.0.0.1:7790': conflicts with "
                 "http '127.0.0.1:7790' (line 7)");
    expect_error(DAEMON_OK "http = 7780\n" STATION_OK,
                 "t.conf:7: http '7780': expected HOST:PORT (or off)");
    /* The built-in config serves the pages on loopback. */
    const char *t = config_default_text();
    CU_ASSERT_EQUAL(config_parse(t, strlen(t), "d", "/repo", &cfg, NULL), 0);
    CU_ASSERT_STRING_EQUAL(cfg->http_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->http_port, 7780);
    CU_ASSERT_STRING_EQUAL(cfg->web_root, "/repo/web");
    config_destroy(&cfg);
}

/*
 * The built-in default config resolves against the tree rmad was built in, not the
 * current directory: rmad --default-config started by make run and an rmactl typed
 * elsewhere name the same database and control socket.
 */
static void test_default_from_anywhere(void)
{
    char *here = getcwd(NULL, 0), *err = NULL, want[4096];
    config_t *a = NULL, *b = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(here);
    CU_ASSERT_EQUAL_FATAL(config_load_default(&a, &err), 0);
    CU_ASSERT_EQUAL_FATAL(chdir("/tmp"), 0);
    CU_ASSERT_EQUAL_FATAL(config_load_default(&b, &err), 0);
    CU_ASSERT_EQUAL(chdir(here), 0);
    snprintf(want, sizeof(want), "%s/state/rmad.db", build_source_root());
    CU_ASSERT_STRING_EQUAL(a->database, want);
    CU_ASSERT_STRING_EQUAL(b->database, want);
    CU_ASSERT_STRING_EQUAL(a->control, b->control);
    snprintf(want, sizeof(want), "ipc://%s/state/rmad.ctl", build_source_root());
    CU_ASSERT_STRING_EQUAL(b->control, want);
    CU_ASSERT(build_source_root()[0] == '/');
    config_destroy(&a);
    config_destroy(&b);
    free(here);
}

static void test_local_policies(void)
{
    const char *text = "[daemon]\ndatabase = d.db\npolicies = p\nlocal_policies = local\n"
                       "pub = tcp://127.0.0.1:1\nreplay = tcp://127.0.0.1:2\n"
                       "control = ipc://c\n[station s]\nscanner = tcp:127.0.0.1:3\n";
    config_t *cfg = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(config_parse(text, strlen(text), "t.conf", "/etc/rmad", &cfg, &err), 0);
    CU_ASSERT_STRING_EQUAL(cfg->local_policies, "/etc/rmad/local");
    config_destroy(&cfg);
    const char *plain = "[daemon]\ndatabase = d.db\npolicies = p\n"
                        "pub = tcp://127.0.0.1:1\nreplay = tcp://127.0.0.1:2\n"
                        "control = ipc://c\n[station s]\nscanner = tcp:127.0.0.1:3\n";
    CU_ASSERT_EQUAL_FATAL(config_parse(plain, strlen(plain), "t.conf", "/x", &cfg, &err), 0);
    CU_ASSERT_PTR_NULL(cfg->local_policies);
    config_destroy(&cfg);
}

/*
 * Access control (issue 15): listeners off loopback must be protected, and the
 * protection's own keys are checked.
 */
static void test_access(void)
{
    /* ZeroMQ endpoints off loopback need CURVE; loopback and ipc do not. */
    expect_error("[daemon]\ndatabase = d\npolicies = p\npub = tcp://0.0.0.0:7781\n"
                 "replay = tcp://127.0.0.1:7782\ncontrol = ipc:///run/c\n" STATION_OK,
                 "t.conf:4: pub 'tcp://0.0.0.0:7781' is not a loopback address: set "
                 "curve_secret_key and curve_allowed_clients too (rmactl keygen), so only "
                 "listed clients connect");
    expect_error("[daemon]\ndatabase = d\npolicies = p\npub = ipc:///run/p\n"
                 "replay = tcp://[2001:db8::1]:7782\ncontrol = ipc:///run/c\n" STATION_OK,
                 "t.conf:5: replay 'tcp://[2001:db8::1]:7782' is not a loopback address: set "
                 "curve_secret_key and curve_allowed_clients too (rmactl keygen), so only "
                 "listed clients connect");
    config_t *cfg = parse_ok("[daemon]\ndatabase = d\npolicies = p\npub = tcp://*:7781\n"
                             "replay = tcp://10.0.0.1:7782\ncontrol = ipc:///run/c\n"
                             "curve_secret_key = /etc/rmad/server.key\n"
                             "curve_allowed_clients = /etc/rmad/clients\n" STATION_OK, "/");
    CU_ASSERT_PTR_NOT_NULL(cfg);
    config_destroy(&cfg);
    expect_error(DAEMON_OK "curve_secret_key = /k\n" STATION_OK,
                 "t.conf:7: curve_secret_key and curve_allowed_clients go together: set both "
                 "(rmactl keygen writes the keys)");
    expect_error(DAEMON_OK "curve_allowed_clients = /k\n" STATION_OK,
                 "t.conf:7: curve_secret_key and curve_allowed_clients go together: set both "
                 "(rmactl keygen writes the keys)");

    /* The control socket: a file with permissions, and an existing group. */
    expect_error("[daemon]\ncontrol = ipc://@rmad\n",
                 "t.conf:2: control 'ipc://@rmad': an abstract socket has no file permissions "
                 "(any local process could use it): use ipc://PATH");
    expect_error(DAEMON_OK "control_group = no-such-group-rmad\n" STATION_OK,
                 "t.conf:7: control_group 'no-such-group-rmad': no such group");
    cfg = parse_ok(DAEMON_OK "control_group = root\n" STATION_OK, "/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->control_group, "root");
    CU_ASSERT_EQUAL(cfg->retain_days, 0);               /* retention is off by default */
    config_destroy(&cfg);

    /* TCP scanners off loopback need allow=, whose networks are checked. */
    expect_error(DAEMON_OK "[station dock1]\nscanner = tcp:0.0.0.0:7790\n",
                 "t.conf:8: station 'dock1': scanner 'tcp:0.0.0.0:7790' listens off "
                 "loopback: add ,allow=CIDR[;CIDR...] (the networks whose peers may send scans)");
    expect_error(DAEMON_OK "[station dock1]\nscanner = tcp:[::]:7790,idle_timeout=5\n",
                 "t.conf:8: station 'dock1': scanner 'tcp:[::]:7790,idle_timeout=5' listens off "
                 "loopback: add ,allow=CIDR[;CIDR...] (the networks whose peers may send scans)");
    static const struct { const char *allow, *why; } bad[] = {
        { "10.0.0.0/33", "allow=10.0.0.0/33: prefix '/33' out of range (0 to 32)" },
        { "10.1.2.3/8", "allow=10.1.2.3/8: '10.1.2.3/8' has bits set past its prefix" },
        { "fd00::/200", "allow=fd00::/200: prefix '/200' out of range (0 to 128)" },
        { "dock.example", "allow=dock.example: 'dock.example' is not an IPv4 or IPv6 address" },
        { "10.0.0.0/8;", "allow=10.0.0.0/8;: expected CIDR[;CIDR...] such as 10.0.0.0/8;fd00::/8" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], want[512];
        snprintf(text, sizeof(text), DAEMON_OK "[station dock1]\nscanner = tcp:0.0.0.0:7790,allow=%s\n",
                 bad[i].allow);
        snprintf(want, sizeof(want), "t.conf:8: station 'dock1': scanner 'tcp:0.0.0.0:7790,allow=%s': %s",
                 bad[i].allow, bad[i].why);
        expect_error(text, want);
    }

    /* Matching: networks, single hosts, IPv4-mapped IPv6 peers. */
    cfg = parse_ok(DAEMON_OK "[station dock1]\n"
                   "scanner = tcp:0.0.0.0:7790,allow=10.20.0.0/14;192.168.1.5;fd00:1::/32;0.0.0.0/0\n"
                   "scanner = tcp:[::]:7791,allow=10.20.0.0/14;192.168.1.5;fd00:1::/32\n", "/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const config_scanner_t *any = &cfg->stations[0].scanners[0], *sc = &cfg->stations[0].scanners[1];
    uint8_t a4[4], a6[16];
    static const struct { const char *addr; bool in; } peers[] = {
        { "10.20.0.1", true },   { "10.23.255.255", true }, { "10.24.0.0", false },
        { "192.168.1.5", true }, { "192.168.1.6", false },  { "fd00:1:ffff::1", true },
        { "fd00:2::1", false },  { "::ffff:10.21.3.4", true }, { "::ffff:10.24.3.4", false },
        { "::1", false },        { "127.0.0.1", false },
    };
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        bool v4 = inet_pton(AF_INET, peers[i].addr, a4) == 1;
        if (!v4)
            CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, peers[i].addr, a6), 1);
        bool in = config_cidr_match(sc->allow, sc->nallow, v4 ? AF_INET : AF_INET6, v4 ? a4 : a6);
        if (in != peers[i].in)
            fprintf(stderr, "\nallow= match of %s: got %d\n", peers[i].addr, in);
        CU_ASSERT_EQUAL(in, peers[i].in);
    }
    CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, "203.0.113.9", a4), 1);
    CU_ASSERT_TRUE(config_cidr_match(any->allow, any->nallow, AF_INET, a4));  /* /0: all */
    config_destroy(&cfg);

    /* Retention. */
    cfg = parse_ok(DAEMON_OK "retain_days = 400\nretain_subscribers = erp, wms-2 bi\n" STATION_OK, "/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->retain_days, 400);
    CU_ASSERT_EQUAL_FATAL(cfg->nretain_subscribers, 3);
    CU_ASSERT_STRING_EQUAL(cfg->retain_subscribers[0], "erp");
    CU_ASSERT_STRING_EQUAL(cfg->retain_subscribers[1], "wms-2");
    CU_ASSERT_STRING_EQUAL(cfg->retain_subscribers[2], "bi");
    config_destroy(&cfg);
    expect_error(DAEMON_OK "retain_days = 0\n" STATION_OK,
                 "t.conf:7: retain_days '0': expected a number of days from 1 to 36500 (leave it "
                 "out to keep everything)");
    expect_error(DAEMON_OK "retain_subscribers = erp erp\n" STATION_OK,
                 "t.conf:7: retain_subscribers 'erp erp': 'erp' is not a new name of 1 to 64 of "
                 "A-Z a-z 0-9 _ . -");
    expect_error(DAEMON_OK "retain_subscribers = erp/x\n" STATION_OK,
                 "t.conf:7: retain_subscribers 'erp/x': 'erp/x' is not a new name of 1 to 64 of "
                 "A-Z a-z 0-9 _ . -");
}

int suite_config(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    if (!s || !CU_add_test(s, "valid file, every key", test_valid_file) ||
        !CU_add_test(s, "defaults of optional keys", test_defaults) ||
        !CU_add_test(s, "built-in default config", test_default_text) ||
        !CU_add_test(s, "syntax errors", test_syntax_errors) ||
        !CU_add_test(s, "unknown and duplicate keys", test_key_errors) ||
        !CU_add_test(s, "missing sections and keys", test_missing) ||
        !CU_add_test(s, "bad [daemon] values", test_daemon_values) ||
        !CU_add_test(s, "timezone", test_timezone) ||
        !CU_add_test(s, "bad scanner specs", test_scanner_values) ||
        !CU_add_test(s, "colliding binds", test_conflicts) ||
        !CU_add_test(s, "http, http_password_file, web_root", test_http_keys) ||
        !CU_add_test(s, "load: relative paths, errors", test_load_relative) ||
        !CU_add_test(s, "built-in default: paths from the source tree, any cwd",
                     test_default_from_anywhere) ||
        !CU_add_test(s, "local_policies", test_local_policies) ||
        !CU_add_test(s, "access: CURVE, allow=, control socket, retention keys", test_access))
        return -1;
    return 0;
}
