/*
 * rmactl scanners: what an installer needs to write a station's `scanner =` lines.
 * The scanners the config names (with the running daemon's view of each, when it
 * answers), then every USB HID device and serial port this machine has, each with
 * the config line that would bind it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cli/client.h"
#include "cli/rmactl.h"
#include "drivers/serial.h"
#include "drivers/usb.h"
#include "proto/control.h"

#define USAGE "usage: rmactl [--config FILE] scanners [--json]"

/* The daemon's status reply, or NULL (with why) when it does not answer. */
static json_t *daemon_status(const config_t *cfg, char **why)
{
    void *zctx = zmq_ctx_new();
    json_t *req = control_request_new("status"), *reply = NULL;
    if (zctx && req &&
        client_call(zctx, cfg->control, req, client_timeout_ms(), &reply, why) < 0) {
        json_decref(reply);
        reply = NULL;
    }
    json_decref(req);
    if (zctx)
        (void)zmq_ctx_term(zctx);
    return reply;
}

/* The daemon's scanner entry for spec (station name), or NULL. */
static const json_t *live_scanner(const json_t *status, const char *station, const char *spec)
{
    size_t i, j;
    json_t *st, *sc;
    json_array_foreach(json_object_get(status, "stations"), i, st) {
        if (!json_is_string(json_object_get(st, "name")) ||
            strcmp(json_string_value(json_object_get(st, "name")), station) != 0)
            continue;
        json_array_foreach(json_object_get(st, "scanners"), j, sc) {
            const char *s = json_string_value(json_object_get(sc, "spec"));
            if (s && strcmp(s, spec) == 0)
                return sc;
        }
    }
    return NULL;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *configured(const config_t *cfg, const json_t *status, const char *why)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < cfg->nstations; i++) {
        const config_station_t *st = &cfg->stations[i];
        for (size_t k = 0; k < st->nscanners; k++) {
            const json_t *live = status ? live_scanner(status, st->name, st->scanners[k].spec)
                                        : NULL;
            json_t *o = json_pack("{s:s, s:s}", "station", st->name, "spec",
                                  st->scanners[k].spec);
            if (!o)
                continue;
            if (st->scanners[k].kind == CONFIG_SCANNER_USB) {
                /* A keyboard wedge's text depends on these: shown so a wrong one is seen. */
                const char *layout = config_scanner_option(&st->scanners[k], "layout");
                const char *alt = config_scanner_option(&st->scanners[k], "alt");
                json_object_set_new(o, "layout", json_string(layout ? layout : "us"));
                json_object_set_new(o, "alt", json_boolean(alt && strcmp(alt, "yes") == 0));
            }
            if (live) {
                json_object_set(o, "state", json_object_get(live, "state"));
                json_object_set(o, "detail", json_object_get(live, "detail"));
            } else {
                json_object_set_new(o, "state", json_string("unknown"));
                json_object_set_new(o, "detail", json_string(why ? why : "rmad is not running"));
            }
            json_array_append_new(a, o);
        }
    }
    return a;
}

static json_t *usb_devices(char **err)
{
    usb_hid_info_t *list = NULL;
    size_t n = 0;
    int rc = usb_list_hid(&list, &n);
    if (rc < 0) {
        if (asprintf(err, "cannot list USB devices: %s", strerror(-rc)) < 0)
            *err = NULL;
        return json_array();
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const usb_hid_info_t *u = &list[i];
        char id[16], line[200];
        snprintf(id, sizeof(id), "%04x:%04x", u->vid, u->pid);
        /* A serial number makes the line bind this one device, when it has a usable one. */
        bool ser = u->serial && u->serial[0] != '(' && !strpbrk(u->serial, " ,:");
        snprintf(line, sizeof(line), "usb:%s%s%s", id, ser ? ":" : "", ser ? u->serial : "");
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:s}", "id", id, "port",
                              u->path, "manufacturer", str_or_null(u->manufacturer),
                              "product", str_or_null(u->product), "serial",
                              str_or_null(u->serial), "kind", usb_hid_kind_name(u->kind),
                              "note", str_or_null(u->note), "config", line);
        if (o)
            json_array_append_new(a, o);
    }
    usb_hid_list_free(list, n);
    return a;
}

static json_t *serial_ports(char **err)
{
    serial_port_info_t *ports = NULL;
    size_t n = 0;
    int rc = serial_list_ports(&ports, &n);
    if (rc < 0) {
        if (asprintf(err, "cannot list serial ports: %s", strerror(-rc)) < 0)
            *err = NULL;
        return json_array();
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const serial_port_info_t *p = &ports[i];
        char line[300], id[16] = "";
        if (p->transport == SERIAL_TRANSPORT_USB) {
            snprintf(id, sizeof(id), "%04x:%04x", p->usb_vid, p->usb_pid);
            snprintf(line, sizeof(line), "serial:usb=%s", id);
        } else {
            snprintf(line, sizeof(line), "serial:%s", p->path);
        }
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "path", p->path, "transport",
                              serial_transport_name(p->transport), "description",
                              p->description, "config", line);
        if (o && id[0])
            json_object_set_new(o, "usb_id", json_string(id));
        if (o)
            json_array_append_new(a, o);
    }
    serial_ports_free(&ports, n);
    return a;
}

static void print_text(const json_t *r)
{
    size_t i;
    json_t *o;
    printf("configured scanners (%s):\n", json_string_value(json_object_get(r, "config")));
    json_array_foreach(json_object_get(r, "configured"), i, o) {
        printf("  %-12s %-36s %s (%s)\n", json_string_value(json_object_get(o, "station")),
               json_string_value(json_object_get(o, "spec")),
               json_string_value(json_object_get(o, "state")),
               json_string_value(json_object_get(o, "detail")));
        if (json_object_get(o, "layout"))
            printf("      keyboard wedge: layout %s%s\n",
                   json_string_value(json_object_get(o, "layout")),
                   json_is_true(json_object_get(o, "alt")) ? ", Alt mode" : "");
    }
    printf("\nUSB HID devices:\n");
    if (json_array_size(json_object_get(r, "usb")) == 0)
        printf("  none\n");
    json_array_foreach(json_object_get(r, "usb"), i, o) {
        const char *m = json_string_value(json_object_get(o, "manufacturer"));
        const char *p = json_string_value(json_object_get(o, "product"));
        const char *s = json_string_value(json_object_get(o, "serial"));
        const char *note = json_string_value(json_object_get(o, "note"));
        printf("  %s  port %-8s %-14s %s%s%s%s%s\n", json_string_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "port")),
               json_string_value(json_object_get(o, "kind")), m ? m : "", m && p ? " " : "",
               p ? p : "", s ? ", serial " : "", s ? s : "");
        if (note)
            printf("      (%s)\n", note);
        printf("      scanner = %s\n", json_string_value(json_object_get(o, "config")));
    }
    printf("\nserial ports:\n");
    if (json_array_size(json_object_get(r, "serial")) == 0)
        printf("  none\n");
    json_array_foreach(json_object_get(r, "serial"), i, o) {
        const char *id = json_string_value(json_object_get(o, "usb_id"));
        printf("  %-20s %-9s %s%s%s\n", json_string_value(json_object_get(o, "path")),
               json_string_value(json_object_get(o, "transport")),
               json_string_value(json_object_get(o, "description")), id ? ", USB " : "",
               id ? id : "");
        printf("      scanner = %s\n", json_string_value(json_object_get(o, "config")));
    }
    json_t *errs = json_object_get(r, "errors");
    json_array_foreach(errs, i, o)
        printf("\n%s\n", json_string_value(o));
}

int cmd_scanners(int argc, char **argv)
{
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else {
            cli_error("scanners: unexpected argument '%s' (%s)", argv[i], USAGE);
            return EXIT_BADINPUT;
        }
    }
    config_t *cfg = NULL;
    char *err = NULL, *why = NULL, *usb_err = NULL, *ser_err = NULL;
    int rc = client_load_config(NULL, &cfg, &err);
    if (rc < 0) {
        cli_error("%s", err ? err : "out of memory");
        free(err);
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    json_t *status = daemon_status(cfg, &why);
    json_t *r = json_pack("{s:s, s:o, s:o, s:o, s:[]}", "config", cfg->source, "configured",
                          configured(cfg, status, why), "usb", usb_devices(&usb_err),
                          "serial", serial_ports(&ser_err), "errors");
    if (r && usb_err)
        json_array_append_new(json_object_get(r, "errors"), json_string(usb_err));
    if (r && ser_err)
        json_array_append_new(json_object_get(r, "errors"), json_string(ser_err));
    free(usb_err);
    free(ser_err);
    free(why);
    json_decref(status);
    config_destroy(&cfg);
    if (!r) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    if (as_json) {
        char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
    } else {
        print_text(r);
    }
    json_decref(r);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
