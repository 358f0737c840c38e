/*
 * rmactl label | sheet: render a disposition label (labels/label.h) or the station's
 * command sheet (labels/sheet.h) to a file. Both run in-process, no daemon needed.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cli/client.h"
#include "cli/rmactl.h"
#include "cli/sheet_acc.h"
#include "db/db.h"
#include "labels/label.h"
#include "labels/receipt.h"
#include "labels/sheet.h"

#define LABEL_JSON_MAX (64u * 1024u)

/* Write len bytes to path ("-" = stdout). EXIT_OK, or EXIT_FAIL with the error printed. */
static int write_output(const char *path, const uint8_t *data, size_t len)
{
    int to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return EXIT_FAIL;
    }
    int bad = len && fwrite(data, len, 1, f) != 1;
    bad |= to_stdout ? fflush(f) != 0 : fclose(f) != 0;
    if (bad) {
        cli_error("%s: write error", to_stdout ? "stdout" : path);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cli_label_write(const label_t *l, label_format_t fmt, label_size_t size, int dpi,
                    const char *path)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = label_render(l, fmt, size, dpi, &out, &len);
    label_release_fonts(); /* rmactl renders once */
    if (rc < 0) {
        cli_error("label: cannot render: %s", strerror(-rc));
        return EXIT_FAIL;
    }
    rc = write_output(path, out, len);
    free(out);
    return rc;
}

/* A JSON type in words, for "must be ..." messages. */
static const char *json_type_name(json_type t)
{
    switch (t) {
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
        return "true or false";
    case JSON_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

typedef struct {
    label_t label;
    const char **flags; /* malloc'd array of strings borrowed from the JSON */
} json_label_t;

/*
 * Fill jl from the JSON object j (which must outlive jl). Keys: disposition, refusal,
 * rma, receipt_id, serial, vendor, model, restocking_fee_pct, flags, reason (or the
 * policy result's reasons: the first one's text), station, time; null = absent.
 * Returns 0, or -EINVAL with a one-line reason in err, or -ENOMEM. Free jl->flags.
 */
static int label_from_json(json_t *j, json_label_t *jl, char *err, size_t err_size)
{
    static const struct {
        const char *key;
        json_type type;
        size_t off; /* offset of the const char * field; (size_t)-1: special */
    } keys[] = {
        { "disposition", JSON_STRING, offsetof(label_t, disposition) },
        { "rma", JSON_STRING, offsetof(label_t, rma) },
        { "serial", JSON_STRING, offsetof(label_t, serial) },
        { "vendor", JSON_STRING, offsetof(label_t, vendor) },
        { "model", JSON_STRING, offsetof(label_t, model) },
        { "reason", JSON_STRING, offsetof(label_t, reason) },
        { "station", JSON_STRING, offsetof(label_t, station) },
        { "time", JSON_STRING, offsetof(label_t, time) },
        { "refusal", JSON_TRUE, (size_t)-1 },
        { "receipt_id", JSON_INTEGER, (size_t)-1 },
        { "restocking_fee_pct", JSON_REAL, (size_t)-1 },
        { "flags", JSON_ARRAY, (size_t)-1 },
        { "reasons", JSON_ARRAY, (size_t)-1 },
    };
    memset(jl, 0, sizeof(*jl));
    if (!json_is_object(j)) {
        snprintf(err, err_size, "the label must be a JSON object");
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        size_t k;
        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (strcmp(key, keys[k].key) == 0)
                break;
        if (k == sizeof(keys) / sizeof(keys[0])) {
            snprintf(err, err_size, "unknown key \"%.40s\"", key);
            return -EINVAL;
        }
        if (json_is_null(v))
            continue;
        int ok = keys[k].type == JSON_TRUE    ? json_is_boolean(v)
                 : keys[k].type == JSON_REAL  ? json_is_number(v)
                                              : json_typeof(v) == keys[k].type;
        if (!ok) {
            snprintf(err, err_size, "\"%s\" must be %s", key, json_type_name(keys[k].type));
            return -EINVAL;
        }
        if (keys[k].off != (size_t)-1)
            *(const char **)((char *)&jl->label + keys[k].off) = json_string_value(v);
    }
    label_t *l = &jl->label;
    l->refusal = json_is_true(json_object_get(j, "refusal"));
    json_t *id = json_object_get(j, "receipt_id");
    l->receipt_id = json_is_integer(id) ? json_integer_value(id) : 0;
    json_t *fee = json_object_get(j, "restocking_fee_pct");
    l->restocking_fee_pct = json_is_number(fee) ? json_number_value(fee) : 0;
    if (l->restocking_fee_pct < 0 || l->restocking_fee_pct > 100) {
        snprintf(err, err_size, "\"restocking_fee_pct\" must be from 0 to 100");
        return -EINVAL;
    }
    json_t *reasons = json_object_get(j, "reasons");
    if (!l->reason && json_array_size(reasons) > 0) {
        json_t *text = json_object_get(json_array_get(reasons, 0), "text");
        if (!json_is_string(text)) {
            snprintf(err, err_size, "\"reasons\" must hold objects with a \"text\" string");
            return -EINVAL;
        }
        l->reason = json_string_value(text);
    }
    json_t *flags = json_object_get(j, "flags");
    size_t n = json_array_size(flags);
    if (n) {
        jl->flags = calloc(n, sizeof(*jl->flags));
        if (!jl->flags)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            jl->flags[i] = json_string_value(json_array_get(flags, i));
            if (!jl->flags[i]) {
                snprintf(err, err_size, "\"flags\" must hold strings");
                free(jl->flags);
                jl->flags = NULL;
                return -EINVAL;
            }
        }
        l->flags = jl->flags;
        l->n_flags = n;
    }
    return 0;
}

/* The value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"), or NULL if not it. */
static const char *option(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

/*
 * The output format: the one path's extension names (.zpl, .pdf, .png, any case), so
 * that label.png is never ZPL inside. --format, when given, must agree with it; stdout
 * ("-") has no name, so it needs --format. `allowed` is a bit per label_format_t the
 * command writes (the sheet is PDF only). EXIT_OK with *fmt set, or EXIT_BADINPUT with
 * the one line printed.
 */
static int output_format(const char *cmd, const char *path, int have_fmt, unsigned allowed,
                         label_format_t *fmt)
{
    static const char *const names[] = { [LABEL_ZPL] = "zpl", [LABEL_PDF] = "pdf",
                                         [LABEL_PNG] = "png" };
    if (strcmp(path, "-") == 0) {
        if (!have_fmt) {
            cli_error("%s: writing to stdout ('-o -') needs --format", cmd);
            return EXIT_BADINPUT;
        }
        return EXIT_OK;
    }
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    label_format_t ext;
    char lower[8] = "";
    if (dot && (!slash || dot > slash) && strlen(dot + 1) < sizeof(lower))
        for (size_t i = 0; dot[1 + i]; i++)
            lower[i] = (char)tolower((unsigned char)dot[1 + i]);
    if (label_format_parse(lower, &ext) < 0 || !(allowed & (1u << ext))) {
        char list[32] = "";
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (allowed & (1u << i))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s.%s",
                         list[0] ? ", " : "", names[i]);
        cli_error("%s: cannot write '%s': the output name must end in %s", cmd, path, list);
        return EXIT_BADINPUT;
    }
    if (have_fmt && *fmt != ext) {
        cli_error("%s: --format %s contradicts the output name '%s'", cmd, names[*fmt], path);
        return EXIT_BADINPUT;
    }
    *fmt = ext;
    return EXIT_OK;
}

/*
 * The config's timezone for the label's time: rmad shows the same zone (both call
 * config_timezone_apply), so a preview says what the printer prints.
 */
static int apply_config_timezone(config_t *cfg)
{
    int rc = config_timezone_apply(cfg);
    if (rc < 0) {
        cli_error("label: timezone: %s", strerror(-rc));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

#define LABEL_USAGE \
    "usage: rmactl label RECEIPT|--json FILE [--format zpl|pdf|png] [--size 4x6|2x1] " \
    "[--dpi 203|300] -o FILE"

/*
 * RECEIPT: the label the daemon prints for that receipt (labels/receipt.h reads it
 * from the config's database), in its station's format, size and resolution unless
 * the options say otherwise, so a supervisor sees exactly what the printer gets.
 */
static int label_of_receipt(const char *arg, label_receipt_t *lr, config_station_t *st_out,
                            int *found)
{
    char *end;
    errno = 0;
    long long id = strtoll(arg, &end, 10);
    if (!*arg || *end || errno || id <= 0) {
        cli_error("label: RECEIPT must be a receipt id (a whole number > 0), not '%s'", arg);
        return EXIT_BADINPUT;
    }
    config_t *cfg = NULL;
    char *err = NULL;
    int rc = client_load_config(NULL, &cfg, &err);
    if (rc < 0) {
        cli_error("%s", err ? err : "out of memory");
        free(err);
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    db_t *db = NULL;
    if ((rc = apply_config_timezone(cfg)) != EXIT_OK) {
        config_destroy(&cfg);
        return rc;
    }
    if (access(cfg->database, F_OK) < 0) {
        cli_error("label: %s: %s", cfg->database, strerror(errno));
        config_destroy(&cfg);
        return EXIT_FAIL;
    }
    if ((rc = db_open(cfg->database, &db, &err)) == 0)
        rc = label_receipt_load(db, id, lr, &err);
    if (rc < 0) {
        cli_error("label: %s", err ? err : strerror(-rc));
        free(err);
        db_close(&db);
        config_destroy(&cfg);
        return rc == -ENOENT || rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    db_close(&db);
    *found = 0;
    for (size_t i = 0; i < cfg->nstations; i++)
        if (strcmp(cfg->stations[i].name, lr->receipt.station) == 0) {
            *st_out = cfg->stations[i];   /* only the label settings are used */
            *found = 1;
        }
    config_destroy(&cfg);
    return EXIT_OK;
}

int cmd_label(int argc, char **argv)
{
    const char *json_path = NULL, *out_path = NULL, *receipt = NULL, *v;
    label_format_t fmt = LABEL_PDF;
    label_size_t size = LABEL_4X6;
    int dpi = 203, have_fmt = 0, have_size = 0, have_dpi = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = option(argc, argv, &i, "--json"))) {
            json_path = v;
        } else if ((v = option(argc, argv, &i, "-o")) || (v = option(argc, argv, &i, "--output"))) {
            out_path = v;
        } else if ((v = option(argc, argv, &i, "--format"))) {
            if (label_format_parse(v, &fmt) < 0) {
                cli_error("label: --format must be zpl, pdf or png, not '%s'", v);
                return EXIT_BADINPUT;
            }
            have_fmt = 1;
        } else if ((v = option(argc, argv, &i, "--size"))) {
            if (label_size_parse(v, &size) < 0) {
                cli_error("label: --size must be 4x6 or 2x1, not '%s'", v);
                return EXIT_BADINPUT;
            }
            have_size = 1;
        } else if ((v = option(argc, argv, &i, "--dpi"))) {
            if (label_dpi_parse(v, &dpi) < 0) {
                cli_error("label: --dpi must be 203 or 300, not '%s'", v);
                return EXIT_BADINPUT;
            }
            have_dpi = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_error("label: unknown option, or no value after it: '%s' (%s)", argv[i],
                      LABEL_USAGE);
            return EXIT_BADINPUT;
        } else if (!receipt) {
            receipt = argv[i];
        } else {
            cli_error("label: unexpected argument '%s' (%s)", argv[i], LABEL_USAGE);
            return EXIT_BADINPUT;
        }
    }
    if (json_path && receipt) {
        cli_error("label: give a RECEIPT or --json FILE, not both (%s)", LABEL_USAGE);
        return EXIT_BADINPUT;
    }
    if ((!json_path && !receipt) || !out_path) {
        cli_error("%s", LABEL_USAGE);
        return EXIT_BADINPUT;
    }
    int rc = output_format("label", out_path, have_fmt,
                           1u << LABEL_ZPL | 1u << LABEL_PDF | 1u << LABEL_PNG, &fmt);
    if (rc != EXIT_OK)
        return rc;
    if (receipt) {
        label_receipt_t lr;
        config_station_t st = { 0 };
        int found = 0;
        rc = label_of_receipt(receipt, &lr, &st, &found);
        if (rc != EXIT_OK)
            return rc;
        /* The format is the output name's; size and dpi are the station's. */
        if (!have_size && found)
            size = st.label_size == CONFIG_LABEL_2X1 ? LABEL_2X1 : LABEL_4X6;
        if (!have_dpi && found)
            dpi = st.label_dpi;
        rc = cli_label_write(&lr.label, fmt, size, dpi, out_path);
        label_receipt_clear(&lr);
        return rc;
    }
    config_t *cfg = NULL;
    char *cerr = NULL;
    rc = client_load_config(NULL, &cfg, &cerr);
    if (rc < 0) {
        cli_error("%s", cerr ? cerr : "out of memory");
        free(cerr);
        return rc == -EINVAL ? EXIT_BADINPUT : EXIT_FAIL;
    }
    rc = apply_config_timezone(cfg);
    config_destroy(&cfg);
    if (rc != EXIT_OK)
        return rc;

    size_t len;
    char *text = cli_read_input(json_path, LABEL_JSON_MAX, &len);
    if (!text)
        return EXIT_BADINPUT;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!j) {
        cli_error("label: %s: line %d: %s", json_path, jerr.line, jerr.text);
        return EXIT_BADINPUT;
    }
    json_label_t jl;
    char err[160];
    rc = label_from_json(j, &jl, err, sizeof(err));
    if (rc < 0) {
        if (rc == -ENOMEM)
            cli_error("out of memory");
        else
            cli_error("label: %s: %s", json_path, err);
        json_decref(j);
        return rc == -ENOMEM ? EXIT_FAIL : EXIT_BADINPUT;
    }
    rc = cli_label_write(&jl.label, fmt, size, dpi, out_path);
    free(jl.flags);
    json_decref(j);
    return rc;
}

#define SHEET_USAGE                                                                        \
    "usage: rmactl sheet [--paper a4|letter] [--format pdf] [--vendor V] [--model M] "       \
    "[--policies DIR] -o FILE.pdf"

/*
 * --vendor / --model: the accessory sheet (cli/sheet_acc.h), from --policies or the
 * config's policies. EXIT_OK with *pdf, or the error printed.
 */
static int render_accessories(sheet_paper_t paper, const char *vendor, const char *model,
                              const char *policies, uint8_t **pdf, size_t *len)
{
    config_t *cfg = NULL;
    char *err = NULL, *title = NULL;
    sheet_acc_t acc = { 0 };
    if (!policies && client_load_config(NULL, &cfg, &err) < 0) {
        cli_error("sheet: %s", err ? err : "cannot read the config");
        free(err);
        return EXIT_BADINPUT;
    }
    int rc = sheet_acc_groups(policies ? policies : cfg->policies,
                              policies ? NULL : cfg->local_policies, vendor, model, &acc, &err);
    config_destroy(&cfg);
    if (rc < 0) {
        cli_error("sheet: %s", err ? err : strerror(-rc));
        free(err);
        return rc == -ENOMEM ? EXIT_FAIL : EXIT_BADINPUT;
    }
    if (asprintf(&title, "rmad accessory sheet: %s%s%s", vendor ? vendor : "",
                 vendor && model ? ", " : "", model ? model : "") < 0)
        title = NULL;
    rc = title ? sheet_render_groups(paper, title, acc.groups, acc.n, pdf, len) : -ENOMEM;
    free(title);
    sheet_acc_free(&acc);
    if (rc < 0) {
        cli_error("sheet: cannot render: %s", strerror(-rc));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_sheet(int argc, char **argv)
{
    const char *out_path = NULL, *v, *vendor = NULL, *model = NULL, *policies = NULL;
    sheet_paper_t paper = SHEET_A4;
    int have_fmt = 0;
    for (int i = 1; i < argc; i++) {
        if ((v = option(argc, argv, &i, "-o")) || (v = option(argc, argv, &i, "--output"))) {
            out_path = v;
        } else if ((v = option(argc, argv, &i, "--vendor"))) {
            vendor = v;
        } else if ((v = option(argc, argv, &i, "--model"))) {
            model = v;
        } else if ((v = option(argc, argv, &i, "--policies"))) {
            policies = v;
        } else if ((v = option(argc, argv, &i, "--paper"))) {
            if (sheet_paper_parse(v, &paper) < 0) {
                cli_error("sheet: --paper must be a4 or letter, not '%s'", v);
                return EXIT_BADINPUT;
            }
        } else if ((v = option(argc, argv, &i, "--format"))) {
            label_format_t f;
            if (label_format_parse(v, &f) < 0 || f != LABEL_PDF) {
                cli_error("sheet: --format must be pdf (the sheet is a PDF), not '%s'", v);
                return EXIT_BADINPUT;
            }
            have_fmt = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            cli_error("sheet: unknown option, or no value after it: '%s' (%s)", argv[i],
                      SHEET_USAGE);
            return EXIT_BADINPUT;
        } else {
            cli_error("sheet: unexpected argument '%s' (%s)", argv[i], SHEET_USAGE);
            return EXIT_BADINPUT;
        }
    }
    if (!out_path) {
        cli_error("%s", SHEET_USAGE);
        return EXIT_BADINPUT;
    }
    label_format_t fmt = LABEL_PDF;
    int rc = output_format("sheet", out_path, have_fmt, 1u << LABEL_PDF, &fmt);
    if (rc != EXIT_OK)
        return rc;
    uint8_t *pdf = NULL;
    size_t len = 0;
    if (vendor || model) {
        /* A sheet of its own, to lay beside the command sheet. */
        if ((rc = render_accessories(paper, vendor, model, policies, &pdf, &len)) != EXIT_OK) {
            label_release_fonts();
            return rc;
        }
    } else {
        rc = sheet_render(paper, &pdf, &len);
    }
    label_release_fonts();
    if (rc < 0) {
        cli_error("sheet: cannot render: %s", strerror(-rc));
        return EXIT_FAIL;
    }
    rc = write_output(out_path, pdf, len);
    free(pdf);
    return rc;
}
