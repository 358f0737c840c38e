/*
 * rmactl's operations commands, in-process (no daemon needed, though doctor asks it
 * when it runs):
 *   keygen NAME   a CURVE key pair for the event bus (daemon/curve.h)
 *   backup FILE   a consistent copy of the database while rmad writes (db/maint.h)
 *   doctor        every check an admin would make, in plain words, exit 1 on a problem
 */
#include <cups/cups.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zmq.h>

#include "cli/client.h"
#include "cli/rmactl.h"
#include "core/msgf.h"
#include "daemon/curve.h"
#include "db/db.h"
#include "db/maint.h"
#include "drivers/serial.h"
#include "drivers/usb.h"
#include "labels/printer.h"
#include "policy/policyset.h"
#include "proto/control.h"

/* Free space below this on the database's filesystem is a problem (--min-free-mb). */
#define DOCTOR_MIN_FREE_MB 200
#define DOCTOR_CUPS_TIMEOUT_MS 5000

/* --config FILE or --config=FILE at argv[*i]: sets *config. Returns 1 when it was one. */
static int config_opt(int argc, char **argv, int *i, const char **config)
{
    const char *a = argv[*i];
    if (strncmp(a, "--config=", 9) == 0) {
        *config = a + 9;
        return 1;
    }
    if (strcmp(a, "--config") == 0 && *i + 1 < argc) {
        *config = argv[++*i];
        return 1;
    }
    return 0;
}

/* ---- keygen --------------------------------------------------------------------- */

int cmd_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        cli_error("usage: rmactl keygen NAME   (writes NAME.key and NAME.pub)");
        return EXIT_BADINPUT;
    }
    char *err = NULL;
    int rc = curve_keygen(argv[1], &err);
    if (rc < 0) {
        cli_error("keygen: %s", err ? err : strerror(-rc));
        free(err);
        return rc == -EEXIST || rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\n", argv[1], argv[1]);
    return EXIT_OK;
}

/* ---- backup --------------------------------------------------------------------- */

int cmd_backup(int argc, char **argv)
{
    const char *config = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (config_opt(argc, argv, &i, &config))
            continue;
        if (argv[i][0] == '-' || file) {
            cli_error("usage: rmactl [--config FILE] backup FILE");
            return EXIT_BADINPUT;
        }
        file = argv[i];
    }
    if (!file) {
        cli_error("usage: rmactl [--config FILE] backup FILE");
        return EXIT_BADINPUT;
    }
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = client_load_config(config, &cfg, &err);
    if (rc < 0) {
        cli_error("%s", err ? err : strerror(-rc));
        free(err);
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    int pages = 0;
    rc = db_backup_file(cfg->database, file, &pages, &err);
    if (rc < 0) {
        cli_error("backup: %s", err ? err : strerror(-rc));
        free(err);
        config_destroy(&cfg);
        return EXIT_FAIL;
    }
    printf("backup: %s (%d pages of %s, quick_check ok)\n", file, pages, cfg->database);
    config_destroy(&cfg);
    return EXIT_OK;
}

/* ---- doctor --------------------------------------------------------------------- */

struct doctor {
    unsigned problems;
};

__attribute__((format(printf, 4, 5)))
static void report(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    printf("%-8s %-9s %s\n", ok ? "ok" : "PROBLEM", what, msg ? msg : "(out of memory)");
    free(msg);
    if (!ok)
        d->problems++;
}

static void check_policies(struct doctor *d, const config_t *cfg)
{
    policyset_t *ps = NULL;
    char *err = NULL;
    int rc = policyset_load(cfg->policies, &ps, &err);
    if (rc < 0)
        report(d, false, "policies", "%s", err ? err : strerror(-rc));
    else
        report(d, true, "policies", "%zu vendor policies in %s", policyset_count(ps),
               cfg->policies);
    free(err);
    policyset_destroy(&ps);
}

static void check_database(struct doctor *d, const config_t *cfg)
{
    char *err = NULL;
    int rc = db_check_location(cfg->database, &err);
    if (rc < 0) {
        report(d, false, "database", "%s", err ? err : strerror(-rc));
        free(err);
        return;
    }
    if (access(cfg->database, F_OK) < 0) {
        report(d, true, "database", "%s does not exist yet (rmad creates it when it starts)",
               cfg->database);
        return;
    }
    rc = db_integrity_check(cfg->database, &err);
    if (rc < 0)
        report(d, false, "database", "%s%s", err ? err : strerror(-rc),
               rc == -EBADMSG ? " (the database is damaged: restore the last backup, "
                                "see README \"Backup and restore\")" : "");
    else
        report(d, true, "database", "%s: integrity_check ok", cfg->database);
    free(err);
}

static void check_disk(struct doctor *d, const config_t *cfg, unsigned long long min_mb)
{
    char *dir = strdup(cfg->database);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (!dir || !slash) {
        free(dir);
        report(d, false, "disk", "out of memory");
        return;
    }
    *(slash == dir ? slash + 1 : slash) = '\0';
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0) {
        report(d, false, "disk", "%s: %s", dir, strerror(errno));
    } else {
        unsigned long long mb = (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20;
        if (mb < min_mb)
            report(d, false, "disk", "only %llu MiB free on %s (at least %llu wanted): scans "
                   "cannot be stored once it is full", mb, dir, min_mb);
        else
            report(d, true, "disk", "%llu MiB free on %s", mb, dir);
    }
    free(dir);
}

/* The daemon's status, or NULL with *why. */
static json_t *daemon_status(const config_t *cfg, char **why)
{
    void *zctx = zmq_ctx_new();
    json_t *req = control_request_new("status"), *reply = NULL;
    int rc = zctx && req ? client_call(zctx, cfg->control, req, client_timeout_ms(), &reply,
                                       why)
                         : -ENOMEM;
    if (rc < 0) {
        json_decref(reply);
        reply = NULL;
    }
    json_decref(req);
    if (zctx)
        (void)zmq_ctx_term(zctx);
    return reply;
}

/* A CUPS queue, asked directly (cupsd at $CUPS_SERVER or the system's). */
static void check_printer(struct doctor *d, const char *station, const char *queue)
{
    http_t *http = httpConnect2(cupsServer(), ippPort(), NULL, AF_UNSPEC, cupsEncryption(), 1,
                                DOCTOR_CUPS_TIMEOUT_MS, NULL);
    if (!http) {
        report(d, false, "printer", "%s (station %s): CUPS does not answer at %s (is cupsd "
               "running?)", queue, station, cupsServer());
        return;
    }
    cups_dest_t *dest = cupsGetNamedDest(http, queue, NULL);
    httpClose(http);
    if (!dest) {
        report(d, false, "printer", "%s (station %s): no such CUPS queue (lpstat -p lists "
               "them)", queue, station);
        return;
    }
    const char *state = cupsGetOption("printer-state", dest->num_options, dest->options);
    const char *accepting = cupsGetOption("printer-is-accepting-jobs", dest->num_options,
                                          dest->options);
    const char *reasons = cupsGetOption("printer-state-reasons", dest->num_options,
                                        dest->options);
    char *words = printer_reasons_words(reasons && strcmp(reasons, "none") != 0 ? reasons : "");
    if (state && strcmp(state, "5") == 0)
        report(d, false, "printer", "%s (station %s): stopped%s%s (cupsenable %s)", queue,
               station, words && *words ? ": " : "", words ? words : "", queue);
    else if (accepting && strcmp(accepting, "false") == 0)
        report(d, false, "printer", "%s (station %s): rejecting jobs (cupsaccept %s)", queue,
               station, queue);
    else if (words && *words && strstr(words, "media empty"))
        report(d, false, "printer", "%s (station %s): %s", queue, station, words);
    else
        report(d, true, "printer", "%s (station %s): ready%s%s", queue, station,
               words && *words ? ", " : "", words ? words : "");
    free(words);
    cupsFreeDests(1, dest);
}

/* Read/write access to a device node, in words. */
static void check_node(struct doctor *d, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        report(d, false, "scanner", "%s: %s not present (%s)", what, path, strerror(errno));
    else if (access(path, R_OK | W_OK) < 0)
        report(d, false, "scanner", "%s: %s: no permission for this user (the rmad group "
               "needs read and write: see the udev rule in README)", what, path);
    else
        report(d, true, "scanner", "%s: %s present and usable", what, path);
}

/* A scanner without the daemon's view: is the device there, may we open it. */
static void check_scanner_here(struct doctor *d, const config_scanner_t *s)
{
    if (s->kind == CONFIG_SCANNER_TCP) {
        report(d, true, "scanner", "%s: a TCP listener (rmad opens it)", s->spec);
        return;
    }
    if (s->kind == CONFIG_SCANNER_SERIAL && s->path) {
        check_node(d, s->spec, s->path);
        return;
    }
    if (s->kind == CONFIG_SCANNER_SERIAL) {
        serial_port_info_t *ports = NULL;
        size_t n = 0;
        const char *path = NULL;
        if (serial_list_ports(&ports, &n) == 0)
            for (size_t i = 0; i < n && !path; i++)
                if (ports[i].usb_vid == s->vid && ports[i].usb_pid == s->pid)
                    path = ports[i].path;
        if (path)
            check_node(d, s->spec, path);
        else
            report(d, false, "scanner", "%s: no serial port of USB device %04x:%04x is "
                   "present", s->spec, s->vid, s->pid);
        serial_ports_free(&ports, n);
        return;
    }
    usb_hid_info_t *list = NULL;
    size_t n = 0;
    if (usb_list_hid(&list, &n) < 0) {
        report(d, false, "scanner", "%s: cannot list USB devices", s->spec);
        return;
    }
    const usb_hid_info_t *found = NULL;
    for (size_t i = 0; i < n && !found; i++)
        if (list[i].vid == s->vid && list[i].pid == s->pid &&
            (!s->usb_serial || (list[i].serial && strcmp(list[i].serial, s->usb_serial) == 0)))
            found = &list[i];
    if (!found)
        report(d, false, "scanner", "%s: USB device %04x:%04x not present", s->spec, s->vid,
               s->pid);
    else if (found->manufacturer && strcmp(found->manufacturer, "(no permission)") == 0)
        report(d, false, "scanner", "%s: USB device %04x:%04x present, but this user may not "
               "open it (the rmad group needs it: see the udev rule in README)", s->spec,
               s->vid, s->pid);
    else
        report(d, true, "scanner", "%s: USB device %04x:%04x present", s->spec, s->vid, s->pid);
    usb_hid_list_free(list, n);
}

/* A scanner as the running daemon sees it (status), else checked here. */
static void check_scanner(struct doctor *d, const json_t *status, const char *station,
                          const config_scanner_t *s)
{
    size_t i, j;
    json_t *st, *sc;
    json_array_foreach(json_object_get(status, "stations"), i, st) {
        const char *name = json_string_value(json_object_get(st, "name"));
        if (!name || strcmp(name, station) != 0)
            continue;
        json_array_foreach(json_object_get(st, "scanners"), j, sc) {
            const char *spec = json_string_value(json_object_get(sc, "spec"));
            const char *state = json_string_value(json_object_get(sc, "state"));
            const char *detail = json_string_value(json_object_get(sc, "detail"));
            if (!spec || !state || strcmp(spec, s->spec) != 0)
                continue;
            bool ok = strcmp(state, "listening") == 0 || strcmp(state, "connected") == 0;
            report(d, ok, "scanner", "%s (station %s): %s%s%s", s->spec, station,
                   strcmp(state, "absent") == 0 ? "not present" : state,
                   detail ? ", " : "", detail ? detail : "");
            return;
        }
    }
    check_scanner_here(d, s);
}

static void check_keys(struct doctor *d, const config_t *cfg)
{
    if (!cfg->curve_secret_key) {
        report(d, true, "keys", "no CURVE (pub and replay are loopback or ipc only)");
        return;
    }
    uint8_t key[CURVE_KEY_BYTES];
    char *err = NULL;
    int rc = curve_key_read(cfg->curve_secret_key, key, &err);
    explicit_bzero(key, sizeof(key));
    struct stat st;
    if (rc < 0)
        report(d, false, "keys", "curve_secret_key %s", err ? err : strerror(-rc));
    else if (stat(cfg->curve_secret_key, &st) == 0 && (st.st_mode & 077))
        report(d, false, "keys", "curve_secret_key %s is readable by others (mode %04o): "
               "chmod 600 it", cfg->curve_secret_key, (unsigned)(st.st_mode & 07777));
    else
        report(d, true, "keys", "curve_secret_key %s", cfg->curve_secret_key);
    free(err);
    err = NULL;
    rc = curve_clients_check(cfg->curve_allowed_clients, &err);
    if (rc < 0)
        report(d, false, "keys", "%s", err ? err : strerror(-rc));
    else if (rc == 0)
        report(d, false, "keys", "curve_allowed_clients %s has no *.pub keys: no client can "
               "subscribe or replay", cfg->curve_allowed_clients);
    else
        report(d, true, "keys", "%d client key%s in %s", rc, rc == 1 ? "" : "s",
               cfg->curve_allowed_clients);
    free(err);
}

int cmd_doctor(int argc, char **argv)
{
    const char *config = NULL;
    unsigned long long min_mb = DOCTOR_MIN_FREE_MB;
    for (int i = 1; i < argc; i++) {
        if (config_opt(argc, argv, &i, &config))
            continue;
        char *end;
        if (strcmp(argv[i], "--min-free-mb") == 0 && i + 1 < argc) {
            min_mb = strtoull(argv[++i], &end, 10);
            if (*end == '\0' && argv[i][0] >= '0' && argv[i][0] <= '9')
                continue;
        }
        cli_error("usage: rmactl [--config FILE] doctor [--min-free-mb N]");
        return EXIT_BADINPUT;
    }
    struct doctor d = { 0 };
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = client_load_config(config, &cfg, &err);
    if (rc < 0) {
        report(&d, false, "config", "%s", err ? err : strerror(-rc));
        free(err);
        printf("1 problem: the rest cannot be checked without a config\n");
        return EXIT_FAIL;
    }
    report(&d, true, "config", "%s", cfg->source);
    check_policies(&d, cfg);
    check_database(&d, cfg);
    check_disk(&d, cfg, min_mb);

    json_t *status = daemon_status(cfg, &err);
    if (status)
        report(&d, true, "rmad", "running (pid %lld), control on %s",
               (long long)json_integer_value(json_object_get(status, "pid")), cfg->control);
    else
        report(&d, false, "rmad", "%s", err ? err : "not running");
    free(err);

    size_t printers = 0;
    for (size_t i = 0; i < cfg->nstations; i++) {
        const config_station_t *st = &cfg->stations[i];
        for (size_t k = 0; k < st->nscanners; k++)
            check_scanner(&d, status, st->name, &st->scanners[k]);
        if (st->printer) {
            check_printer(&d, st->name, st->printer);
            printers++;
        }
    }
    if (printers == 0)
        report(&d, true, "printer", "no station has a printer");
    check_keys(&d, cfg);
    json_decref(status);
    config_destroy(&cfg);
    if (d.problems)
        printf("%u problem%s found\n", d.problems, d.problems == 1 ? "" : "s");
    else
        printf("all checks passed\n");
    return d.problems ? EXIT_FAIL : EXIT_OK;
}
