/*
 * rmactl as a user runs it: `policy eval` on every case file through the binary, the
 * contract's exit codes and one-line errors for bad cases and broken policy files.
 */
#include <CUnit/CUnit.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "proto/policy_expect.h"
#include "tests/suites.h"

static th_proc_t run_eval(const char *policy, const char *case_text)
{
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *argv[] = { bin, "policy", "eval", "--policy", (char *)policy, "-", NULL };
    return th_run_proc(argv, case_text);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_cases_through_binary(void)
{
    case_file_t *cf;
    char *err = NULL;
    int n = case_files_load("tests/cases/*/*.json", &cf, &err);
    free(err);
    CU_ASSERT_FATAL(n > 0);
    for (int i = 0; i < n; i++) {
        char *text = json_dumps(json_object_get(cf[i].doc, "case"), 0);
        th_proc_t p = run_eval(case_policy_path(&cf[i], "policies"), text);
        free(text);
        json_t *res = json_loads(p.out, 0, NULL);
        char why[512] = "no JSON on stdout";
        int ok = p.status == 0 && res &&
                 expect_check(json_object_get(cf[i].doc, "expect"), res, why, sizeof(why));
        if (!ok)
            fprintf(stderr, "\n  FAIL %s: exit %d, %s %s\n", cf[i].path, p.status, why, p.err);
        CU_ASSERT(ok);
        CU_ASSERT_STRING_EQUAL(p.err, "");
        json_decref(res);
        th_proc_free(&p);
    }
    case_files_free(cf, n);
}

/* Bad case input: nothing on stdout, exactly this one line on stderr, exit 2. */
static const struct {
    const char *input, *err;
} bad_cases[] = {
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"inspection\": {\"packaging\": \"box\"}}",
      "rmactl: case: inspection.packaging: expected original|replacement|none, got \"box\"\n" },
    { "not json", "rmactl: case: not valid JSON (line 1, column 3): '[' or '{' expected near 'not'\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}", "rmactl: case: not valid JSON (line 1, column 37): '}' expected near end of file\n" },
    { "[1, 2]", "rmactl: case: expected a JSON object\n" },
    { "{\"product\": {}}", "rmactl: case: today: required field missing (the receiving date, YYYY-MM-DD)\n" },
    { "{\"today\": \"2026-11-21\"}", "rmactl: case: product: required field missing\n" },
    { "{\"today\": \"2026-02-30\", \"product\": {}}",
      "rmactl: case: today: expected a date YYYY-MM-DD, got \"2026-02-30\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {\"purchased\": \"2025-13-01\"}}",
      "rmactl: case: product.purchased: expected a date YYYY-MM-DD, got \"2025-13-01\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"rma\": {\"kind\": \"refund\"}}",
      "rmactl: case: rma.kind: expected warranty|credit|advance_replacement|otc_exchange, got \"refund\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"rma\": {\"order_value\": \"1250\"}}",
      "rmactl: case: rma.order_value: expected a number >= 0, got \"1250\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {\"warranty_months\": 1.5}}",
      "rmactl: case: product.warranty_months: expected a whole number of months (0 to 1200), got 1.5\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {\"colour\": \"red\"}}",
      "rmactl: case: product.colour: unknown field\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"extra\": 1}", "rmactl: case: extra: unknown field\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"inspection\": {\"findings\": [\"wear\", \"rust\"]}}",
      "rmactl: case: inspection.findings[1]: expected cosmetic_damage|physical_damage|liquid_damage|"
      "electrical_damage|act_of_god|tampered|modified|improper_install|mishandled|wear|"
      "non_vendor_parts|opened|license_activated|missing_parts|wrong_product|transit_damage, got \"rust\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"inspection\": {\"foam\": \"yes\"}}",
      "rmactl: case: inspection.foam: expected true or false, got \"yes\"\n" },
    { "{\"today\": \"2026-11-21\", \"product\": {}, \"inspection\": {\"fault\": \"broken\"}}",
      "rmactl: case: inspection.fault: expected confirmed|no_fault_found|doa|not_tested, got \"broken\"\n" },
    { "{\"today\": \"2026-11-21\", \"today\": \"2026-11-22\", \"product\": {}}",
      "rmactl: case: not valid JSON (line 1, column 31): duplicate object key near '\"today\"'\n" },
    { "{\"today\": \"2026-11-21\", \"product\": []}", "rmactl: case: product: expected an object, got an array\n" },
};

static void test_bad_cases(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        th_proc_t p = run_eval("policies/everfocus.yaml", bad_cases[i].input);
        CU_ASSERT_EQUAL(p.status, 2);
        CU_ASSERT_STRING_EQUAL(p.out, "");
        CU_ASSERT_EQUAL(count_lines(p.err), 1);
        if (strcmp(p.err, bad_cases[i].err) != 0)
            fprintf(stderr, "\n  case %zu: got      %s  expected %s", i, p.err, bad_cases[i].err);
        CU_ASSERT_STRING_EQUAL(p.err, bad_cases[i].err);
        th_proc_free(&p);
    }
}

/* Each fixture's first line says "# expect: MESSAGE"; rmactl must print exactly that. */
static void test_bad_policies(void)
{
    glob_t g;
    CU_ASSERT_FATAL(glob("tests/fixtures/bad-policies/*.yaml", 0, NULL, &g) == 0);
    CU_ASSERT(g.gl_pathc >= 10);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *text = th_read_file(g.gl_pathv[i], NULL);
        CU_ASSERT_FATAL(text != NULL);
        char *nl = strchr(text, '\n');
        if (nl)
            *nl = '\0';
        CU_ASSERT_FATAL(strncmp(text, "# expect: ", 10) == 0);
        char want[1024];
        snprintf(want, sizeof(want), "rmactl: tests/fixtures/bad-policies/%s\n", text + 10);

        char bin[4096];
        snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
        char *check[] = { bin, "policy", "check", g.gl_pathv[i], NULL };
        th_proc_t p;
        CU_ASSERT_FATAL(th_run(check, NULL, &p) == 0);
        CU_ASSERT_EQUAL(p.status, 2);
        if (strcmp(p.err, want) != 0)
            fprintf(stderr, "\n  %s: got      %s  expected %s", g.gl_pathv[i], p.err, want);
        CU_ASSERT_STRING_EQUAL(p.err, want);
        th_proc_free(&p);

        /* eval reports the same broken policy the same way, and prints no result. */
        th_proc_t e = run_eval(g.gl_pathv[i], "{\"today\": \"2026-11-21\", \"product\": {}}");
        CU_ASSERT_EQUAL(e.status, 2);
        CU_ASSERT_STRING_EQUAL(e.out, "");
        CU_ASSERT_STRING_EQUAL(e.err, want);
        th_proc_free(&e);
        free(text);
    }
    globfree(&g);
}

static void test_check_shipped_policies(void)
{
    glob_t g;
    CU_ASSERT_FATAL(glob("policies/*.yaml", 0, NULL, &g) == 0);
    CU_ASSERT_EQUAL(g.gl_pathc, 6);   /* five vendors, and the sixth written only as data */
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char **argv = calloc(g.gl_pathc + 4, sizeof(char *));
    argv[0] = bin;
    argv[1] = "policy";
    argv[2] = "check";
    for (size_t i = 0; i < g.gl_pathc; i++)
        argv[3 + i] = g.gl_pathv[i];
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_STRING_EQUAL(p.out, "");
    CU_ASSERT_STRING_EQUAL(p.err, "");
    th_proc_free(&p);
    free(argv);
    globfree(&g);
}

static void test_usage_and_missing_files(void)
{
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *no_policy[] = { bin, "policy", "eval", NULL };
    char *missing[] = { bin, "policy", "eval", "--policy", "policies/nope.yaml", NULL };
    char *unknown[] = { bin, "frobnicate", NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(no_policy, "", &p) == 0);
    CU_ASSERT_EQUAL(p.status, 2);
    CU_ASSERT_STRING_EQUAL(p.err, "rmactl: usage: rmactl policy eval --policy FILE [CASE.json | -]\n");
    th_proc_free(&p);
    CU_ASSERT_FATAL(th_run(missing, "", &p) == 0);
    CU_ASSERT_EQUAL(p.status, 2);
    CU_ASSERT_STRING_EQUAL(p.err, "rmactl: policies/nope.yaml: No such file or directory\n");
    th_proc_free(&p);
    CU_ASSERT_FATAL(th_run(unknown, "", &p) == 0);
    CU_ASSERT_EQUAL(p.status, 2);
    th_proc_free(&p);
}

static void test_policy_test_command(void)
{
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *good[] = { bin, "policy", "test", "tests/cases/examples/*.json", NULL };
    char *bad[] = { bin, "policy", "test", "tests/fixtures/policy-test/wrong-expectation.json", NULL };
    char *missing[] = { bin, "policy", "test", "tests/fixtures/nope.json", NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(good, NULL, &p) == 0);
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.out, "ok    ex-v7-ssd: warranty_exchange (warranty in, fee 0%)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p.out, "\n5 passed, 0 failed\n"));
    th_proc_free(&p);
    CU_ASSERT_FATAL(th_run(bad, NULL, &p) == 0);
    CU_ASSERT_EQUAL(p.status, 1);
    CU_ASSERT_STRING_EQUAL(p.out, "FAIL  wrong-expectation: disposition refuse not expected\n"
                                  "0 passed, 1 failed\n");
    th_proc_free(&p);
    CU_ASSERT_FATAL(th_run(missing, NULL, &p) == 0);
    CU_ASSERT_EQUAL(p.status, 2);
    CU_ASSERT_STRING_EQUAL(p.err, "rmactl: tests/fixtures/nope.json: no such case file\n");
    th_proc_free(&p);
}

/* The entry of array `a` whose member key is val, or NULL. */
static json_t *find_by(json_t *a, const char *key, const char *val)
{
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        const char *v = json_string_value(json_object_get(o, key));
        if (v && strcmp(v, val) == 0)
            return o;
    }
    return NULL;
}

/*
 * rmactl scanners on a machine with a keyboard-wedge and a HID POS scanner and a
 * USB-serial scanner, emulated by umockdev: each listed with the line to configure it.
 */
static void test_scanners_listing(void)
{
    char *dir = th_mkdtemp(), *conf = NULL, *preload = NULL, rmactl[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_FATAL(asprintf(&conf, "%s/rmad.conf", dir) > 0);
    CU_ASSERT_FATAL(asprintf(&preload, "LD_PRELOAD=%s libumockdev-preload.so.0",
                             th_bin("tiocm-shim.so")) > 0);
    snprintf(rmactl, sizeof(rmactl), "%s", th_bin("rmactl"));
    FILE *f = fopen(conf, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "[daemon]\ndatabase = rmad.db\npolicies = %s/policies\n"
               "pub = tcp://127.0.0.1:1\nreplay = tcp://127.0.0.1:2\ncontrol = ipc://%s/ctl\n"
               "[station dock1]\nscanner = usb:0c2e:0b61,layout=de\n"
               "scanner = serial:/dev/ttyUSB0,baud=19200\n", getenv("PWD"), dir);
    fclose(f);
    char *argv[] = { "/usr/bin/umockdev-run",
                     "-d", "tests/fixtures/usb/hub.umockdev",
                     "-d", "tests/fixtures/usb/kbd-scanner.umockdev",
                     "-d", "tests/fixtures/usb/hidpos-scanner.umockdev",
                     "-d", "tests/fixtures/serial/serial-scanner.umockdev",
                     "--", "/usr/bin/env", "ASAN_OPTIONS=verify_asan_link_order=0",
                     preload, rmactl, "--config", conf, "scanners", "--json", NULL };
    th_proc_t p = th_run_proc(argv, NULL);
    CU_ASSERT_EQUAL(p.status, 0);
    json_error_t je;
    json_t *r = json_loads(p.out ? p.out : "", 0, &je);
    if (!r)
        fprintf(stderr, "\n  rmactl scanners: %s%s\n", p.out, p.err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);

    json_t *c = json_object_get(r, "configured");
    CU_ASSERT_EQUAL(json_array_size(c), 2);
    json_t *usb_cfg = find_by(c, "spec", "usb:0c2e:0b61,layout=de");
    CU_ASSERT_PTR_NOT_NULL(usb_cfg);
    ASSERT_STR(json_string_value(json_object_get(usb_cfg, "station")), "dock1");
    ASSERT_STR(json_string_value(json_object_get(usb_cfg, "state")), "unknown");
    ASSERT_CONTAINS(json_string_value(json_object_get(usb_cfg, "detail")), "rmad is not running");

    json_t *usb = json_object_get(r, "usb");
    json_t *kbd = find_by(usb, "id", "0c2e:0b61"), *pos = find_by(usb, "id", "0c2e:0b6a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(kbd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pos);
    ASSERT_STR(json_string_value(json_object_get(kbd, "kind")), "keyboard");
    ASSERT_STR(json_string_value(json_object_get(kbd, "port")), "1-1");
    ASSERT_STR(json_string_value(json_object_get(pos, "kind")), "hid-pos");
    ASSERT_STR(json_string_value(json_object_get(pos, "config")), "usb:0c2e:0b6a");

    json_t *tty = find_by(json_object_get(r, "serial"), "path", "/dev/ttyUSB0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tty);
    ASSERT_STR(json_string_value(json_object_get(tty, "transport")), "usb");
    ASSERT_STR(json_string_value(json_object_get(tty, "usb_id")), "0403:6001");
    ASSERT_STR(json_string_value(json_object_get(tty, "config")), "serial:usb=0403:6001");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "errors")), 0);
    json_decref(r);
    th_proc_free(&p);

    char *bad[] = { rmactl, "--config", conf, "scanners", "--all", NULL };
    p = th_run_proc(bad, NULL);
    CU_ASSERT_EQUAL(p.status, 2);
    ASSERT_CONTAINS(p.err, "scanners: unexpected argument '--all'");
    th_proc_free(&p);
    free(conf);
    free(preload);
    th_rm_rf(dir);
    free(dir);
}

/* rmactl with these arguments (at most 14). */
static th_proc_t rmactl_run(char *const *args, size_t n)
{
    char bin[4096];
    char *argv[16] = { bin };
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    for (size_t i = 0; i < n && i < 14; i++)
        argv[i + 1] = args[i];
    return th_run_proc(argv, NULL);
}

#define RUN(...) rmactl_run((char *[]){ __VA_ARGS__ }, \
                            sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *))

/* Exit 2, nothing written, and exactly this one line on stderr. */
static void expect_refused(th_proc_t p, const char *path, const char *line)
{
    CU_ASSERT_EQUAL(p.status, 2);
    ASSERT_STR(p.err, line);
    CU_ASSERT_STRING_EQUAL(p.out, "");
    if (path)
        CU_ASSERT(access(path, F_OK) != 0);
    th_proc_free(&p);
}

/* The bytes a file starts with, compared with magic. */
static int starts_with(const char *path, const char *magic, size_t n)
{
    size_t len = 0;
    char *text = th_read_file(path, &len);
    int ok = text && len >= n && memcmp(text, magic, n) == 0;
    free(text);
    return ok;
}

/*
 * The output's name decides the format: label.png is a PNG, never ZPL inside; a name
 * rmactl cannot write, or a --format that says otherwise, is refused with exit 2.
 */
static void test_label_formats_from_names(void)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char png[512], pdf[512], zpl[512], upper[512], bmp[512], none[512], sheet[512];
    snprintf(png, sizeof(png), "%s/x.png", dir);
    snprintf(pdf, sizeof(pdf), "%s/x.pdf", dir);
    snprintf(zpl, sizeof(zpl), "%s/x.zpl", dir);
    snprintf(upper, sizeof(upper), "%s/X.PNG", dir);
    snprintf(bmp, sizeof(bmp), "%s/x.bmp", dir);
    snprintf(none, sizeof(none), "%s/x.d/label", dir);
    snprintf(sheet, sizeof(sheet), "%s/sheet.png", dir);
    char *json = "tests/fixtures/labels/exchange.json";

    static const struct {
        const char *ext, *magic;
        size_t n;
    } kinds[] = { { "png", "\x89PNG", 4 }, { "pdf", "%PDF-", 5 }, { "zpl", "^XA", 3 } };
    const char *paths[] = { png, pdf, zpl };
    for (size_t i = 0; i < 3; i++) {
        th_proc_t p = RUN("label", "--json", json, "-o", (char *)paths[i]);
        CU_ASSERT_EQUAL(p.status, 0);
        ASSERT_STR(p.err, "");
        th_proc_free(&p);
        CU_ASSERT(starts_with(paths[i], kinds[i].magic, kinds[i].n));
        /* --format that agrees is fine. */
        p = RUN("label", "--json", json, "--format", (char *)kinds[i].ext, "-o",
                (char *)paths[i]);
        CU_ASSERT_EQUAL(p.status, 0);
        th_proc_free(&p);
    }
    th_proc_t p = RUN("label", "--json", json, "--size", "2x1", "-o", upper);
    CU_ASSERT_EQUAL(p.status, 0);
    th_proc_free(&p);
    CU_ASSERT(starts_with(upper, "\x89PNG", 4));

    char line[1024];
    snprintf(line, sizeof(line),
             "rmactl: label: cannot write '%s': the output name must end in .zpl, .pdf, .png\n",
             bmp);
    expect_refused(RUN("label", "--json", json, "-o", bmp), bmp, line);
    snprintf(line, sizeof(line),
             "rmactl: label: cannot write '%s': the output name must end in .zpl, .pdf, .png\n",
             none);
    expect_refused(RUN("label", "--json", json, "-o", none), NULL, line);
    unlink(png);
    snprintf(line, sizeof(line), "rmactl: label: --format zpl contradicts the output name '%s'\n",
             png);
    expect_refused(RUN("label", "--json", json, "--format", "zpl", "-o", png), png, line);
    /* The same for a receipt: checked before the database is opened. */
    snprintf(line, sizeof(line), "rmactl: label: --format pdf contradicts the output name '%s'\n",
             png);
    expect_refused(RUN("label", "7", "--format=pdf", "-o", png), png, line);
    expect_refused(RUN("label", "--json", json, "-o", "-"), NULL,
                   "rmactl: label: writing to stdout ('-o -') needs --format\n");
    expect_refused(RUN("label", "7", "-o", "-"), NULL,
                   "rmactl: label: writing to stdout ('-o -') needs --format\n");

    /* stdout with --format. */
    p = RUN("label", "--json", json, "--format", "zpl", "-o", "-");
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT(p.out && strncmp(p.out, "^XA", 3) == 0);
    th_proc_free(&p);

    /* The sheet is a PDF only. */
    snprintf(line, sizeof(line),
             "rmactl: sheet: cannot write '%s': the output name must end in .pdf\n", sheet);
    expect_refused(RUN("sheet", "-o", sheet), sheet, line);
    expect_refused(RUN("sheet", "--format", "png", "-o", pdf), NULL,
                   "rmactl: sheet: --format must be pdf (the sheet is a PDF), not 'png'\n");
    expect_refused(RUN("sheet", "-o", "-"), NULL,
                   "rmactl: sheet: writing to stdout ('-o -') needs --format\n");
    p = RUN("sheet", "--format", "pdf", "-o", "-");
    CU_ASSERT_EQUAL(p.status, 0);
    CU_ASSERT(p.out && strncmp(p.out, "%PDF-", 5) == 0);
    th_proc_free(&p);

    th_rm_rf(dir);
    free(dir);
}

/* rmactl label shows the time in the config's timezone, as rmad prints it. */
static void test_label_timezone_from_config(void)
{
    char *dir = th_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char conf[512], bad[512];
    snprintf(conf, sizeof(conf), "%s/rmad.conf", dir);
    snprintf(bad, sizeof(bad), "%s/bad.conf", dir);
    static const char base[] = "[daemon]\ndatabase = rmad.db\npolicies = .\n"
                               "pub = tcp://127.0.0.1:17781\nreplay = tcp://127.0.0.1:17782\n"
                               "control = ipc://rmad.ctl\n%s"
                               "[station dock-1]\nscanner = tcp:127.0.0.1:17790\n";
    char text[1024];
    snprintf(text, sizeof(text), base, "timezone = America/New_York\n");
    CU_ASSERT_EQUAL(th_write_file(conf, text), 0);
    snprintf(text, sizeof(text), base, "timezone = Mars/Olympus\n");
    CU_ASSERT_EQUAL(th_write_file(bad, text), 0);
    char *json = "tests/fixtures/labels/exchange.json";

    th_proc_t p = RUN("--config", conf, "label", "--json", json, "--format", "zpl", "-o", "-");
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, "2026-03-04 09:05 EST");
    th_proc_free(&p);
    snprintf(text, sizeof(text), base, "timezone = UTC\n");
    CU_ASSERT_EQUAL(th_write_file(conf, text), 0);
    p = RUN("--config", conf, "label", "--json", json, "--format", "zpl", "-o", "-");
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, "2026-03-04 14:05 UTC");
    th_proc_free(&p);

    /* A config with a zone that does not exist: the one FILE:LINE line, exit 2. */
    char line[1024];
    snprintf(line, sizeof(line),
             "rmactl: %s:7: timezone 'Mars/Olympus': no such time zone (not a zone file under "
             "the system's zoneinfo; `timedatectl list-timezones` lists them)\n",
             bad);
    expect_refused(RUN("--config", bad, "label", "--json", json, "--format", "zpl", "-o", "-"),
                   NULL, line);
    th_rm_rf(dir);
    free(dir);
}

/* policy check warns (exit 0) and --strict makes the warnings errors (exit 2). */
static void test_policy_check_warnings(void)
{
    static const struct {
        const char *files[2];
        const char *err;
    } cases[] = {
        { { "tests/fixtures/policy-lint/unreachable.yaml" },
          "tests/fixtures/policy-lint/unreachable.yaml:8: warning: rule no-rma-credit can never "
          "fire: rule no-rma (line 4) always decides first\n" },
        { { "tests/fixtures/policy-lint/window.yaml" },
          "tests/fixtures/policy-lint/window.yaml:6: warning: rule late-and-early: rma.issued: "
          "after 30d and within 10d cannot both hold: the rule never fires\n" },
        { { "tests/fixtures/policy-lint/no-when.yaml" },
          "tests/fixtures/policy-lint/no-when.yaml:4: warning: rule everything: decides "
          "quarantine with no 'when': every case that reaches it\n"
          "tests/fixtures/policy-lint/no-when.yaml:7: warning: rule after-everything can never "
          "fire: rule everything (line 4) always decides first\n" },
        { { "tests/fixtures/policy-lint/alias-a.yaml", "tests/fixtures/policy-lint/alias-b.yaml" },
          "tests/fixtures/policy-lint/alias-b.yaml:2: warning: vendor name 'ACME corp' is also "
          "claimed by tests/fixtures/policy-lint/alias-a.yaml\n" },
    };
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int strict = 0; strict < 2; strict++) {
            char *argv[7] = { bin, "policy", "check" };
            int n = 3;
            if (strict)
                argv[n++] = "--strict";
            argv[n++] = (char *)cases[i].files[0];
            if (cases[i].files[1])
                argv[n++] = (char *)cases[i].files[1];
            th_proc_t p;
            CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
            CU_ASSERT_EQUAL(p.status, strict ? 2 : 0);
            if (strcmp(p.err, cases[i].err) != 0)
                fprintf(stderr, "\n  got      %s  expected %s", p.err, cases[i].err);
            CU_ASSERT_STRING_EQUAL(p.err, cases[i].err);
            th_proc_free(&p);
        }
    }
}

/* A generated 100k-deep `[[[...]]]` file is refused by the depth limit, at once. */
static void test_policy_depth_limit(void)
{
    char *dir = th_mkdtemp(), path[4096], bin[4096];
    snprintf(path, sizeof(path), "%s/deep.yaml", dir);
    const size_t depth = 100000;
    char *text = malloc(2 * depth + 2);
    CU_ASSERT_FATAL(text != NULL);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\n';
    text[2 * depth + 1] = '\0';
    CU_ASSERT_EQUAL_FATAL(th_write_file(path, text), 0);
    free(text);
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    char *argv[] = { bin, "policy", "check", path, NULL };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT_EQUAL(p.status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.err, ":1: nested more than 64 deep (the policy nesting depth limit)\n"));
    CU_ASSERT(secs < 2.0);  /* generous: the limit makes it milliseconds; without it 30+ s */
    th_proc_free(&p);
    th_rm_rf(dir);
    free(dir);
}

/* `rmactl CMD --help` is help on stdout, exit 0, for every command. */
static void test_help_on_every_command(void)
{
    static const char *const cmds[][3] = {
        { "policy", "eval" }, { "policy", "check" }, { "policy", "test" }, { "status" },
        { "receipts" }, { "rma", "import" }, { "reprint" }, { "labels" }, { "labels", "cancel" },
        { "scanners" }, { "watch" }, { "label" }, { "sheet" },
    };
    char bin[4096];
    snprintf(bin, sizeof(bin), "%s", th_bin("rmactl"));
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char *argv[5] = { bin, (char *)cmds[i][0] };
        int n = 2;
        if (cmds[i][1])
            argv[n++] = (char *)cmds[i][1];
        argv[n++] = "--help";
        th_proc_t p;
        CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
        CU_ASSERT_EQUAL(p.status, 0);
        CU_ASSERT_STRING_EQUAL(p.err, "");
        char want[64];
        snprintf(want, sizeof(want), "\n  %s", cmds[i][0]);
        if (!strstr(p.out, want))
            fprintf(stderr, "\n  %s --help: %s", cmds[i][0], p.out);
        CU_ASSERT_PTR_NOT_NULL(strstr(p.out, want));
        th_proc_free(&p);
    }
}

int suite_rmactl_cli(void)
{
    CU_pSuite s = CU_add_suite("rmactl_cli", NULL, NULL);
    if (!s || !CU_add_test(s, "every case through rmactl policy eval", test_cases_through_binary) ||
        !CU_add_test(s, "bad case input: one line, exit 2", test_bad_cases) ||
        !CU_add_test(s, "broken policy files: FILE:LINE, exit 2", test_bad_policies) ||
        !CU_add_test(s, "policy check passes the shipped policies", test_check_shipped_policies) ||
        !CU_add_test(s, "usage and missing files", test_usage_and_missing_files) ||
        !CU_add_test(s, "policy test runs regression case files", test_policy_test_command) ||
        !CU_add_test(s, "policy check warnings, --strict", test_policy_check_warnings) ||
        !CU_add_test(s, "policy nesting depth limit: rejected fast", test_policy_depth_limit) ||
        !CU_add_test(s, "--help on every command", test_help_on_every_command) ||
        !CU_add_test(s, "label and sheet: the format is the output name's",
                     test_label_formats_from_names) ||
        !CU_add_test(s, "label: times in the config's timezone", test_label_timezone_from_config) ||
        !CU_add_test(s, "scanners lists configured and attached devices (umockdev)",
                     test_scanners_listing))
        return -1;
    return 0;
}
