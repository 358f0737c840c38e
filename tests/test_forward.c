/*
 * The JetStream forwarder (issue 18): its [forward] config, its durable mark, and the
 * whole thing end to end against a real `nats-server -js` on loopback, read back by
 * an independent NATS client (tests/integration/forward_e2e.py, natsproto.py).
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "db/db.h"
#include "tests/helpers.h"
#include "tests/suites.h"

#define BASE "[daemon]\ndatabase = d.db\npolicies = p\npub = tcp://127.0.0.1:7781\n" \
             "replay = tcp://127.0.0.1:7782\ncontrol = ipc://c.ctl\n"                  \
             "[station dock1]\nscanner = tcp:127.0.0.1:7790\n"

static config_t *parse(const char *text, char **err)
{
    config_t *cfg = NULL;
    *err = NULL;
    if (config_parse(text, strlen(text), "t.conf", "/etc/rmad", &cfg, err) < 0)
        return NULL;
    return cfg;
}

static void test_config_defaults(void)
{
    char *err;
    config_t *cfg = parse(BASE "[forward]\nnats = nats://hub1:4222, tls://hub2:4222\n"
                               "site = berlin-1\ncreds = nats.creds\n", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const config_forward_t *f = cfg->forward;
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->nservers, 2);
    ASSERT_STR(f->servers[0], "nats://hub1:4222");
    ASSERT_STR(f->servers[1], "tls://hub2:4222");
    ASSERT_STR(f->site, "berlin-1");
    ASSERT_STR(f->stream, "RMAD");
    ASSERT_STR(f->subject_prefix, "rmad");
    CU_ASSERT_EQUAL(f->max_inflight, 256);
    ASSERT_STR(f->creds, "/etc/rmad/nats.creds");
    CU_ASSERT_FALSE(f->tls);
    CU_ASSERT_FALSE(f->rma_feed);
    CU_ASSERT_PTR_NULL(f->rma_consumer);
    config_destroy(&cfg);

    /* The RMA feed: its consumer is named after the site unless named. */
    cfg = parse(BASE "[forward]\nnats = nats://h:4222\nsite = berlin\nrma_feed = yes\n", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_TRUE(cfg->forward->rma_feed);
    ASSERT_STR(cfg->forward->rma_consumer, "rmad-berlin");
    config_destroy(&cfg);
    cfg = parse(BASE "[forward]\nnats = nats://h:4222\nsite = s\nrma_feed = yes\n"
                     "rma_consumer = erp-rmas\n", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    ASSERT_STR(cfg->forward->rma_consumer, "erp-rmas");
    config_destroy(&cfg);

    /* Without the section: no forwarder. */
    cfg = parse(BASE, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_PTR_NULL(cfg->forward);
    config_destroy(&cfg);

    cfg = parse(BASE "[forward]\nnats = nats://h:4222\nsite = s\nstream = EVENTS\n"
                     "subject_prefix = acme.returns\nmax_inflight = 16\ntls_ca = ca.pem\n", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    ASSERT_STR(cfg->forward->stream, "EVENTS");
    ASSERT_STR(cfg->forward->subject_prefix, "acme.returns");
    CU_ASSERT_EQUAL(cfg->forward->max_inflight, 16);
    CU_ASSERT_TRUE(cfg->forward->tls);   /* implied by a CA */
    config_destroy(&cfg);
}

static void test_config_errors(void)
{
    static const struct {
        const char *text, *msg;
    } bad[] = {
        { "[forward]\nnats = nats://h:4222\n", "missing key 'site' in [forward]" },
        { "[forward]\nsite = s\n", "missing key 'nats' in [forward]" },
        { "[forward]\nnats = nats://h:4222\nsite = ber.lin\n", "bad site 'ber.lin'" },
        { "[forward]\nnats = nats://h:4222\nsite = a*\n", "bad site" },
        { "[forward]\nnats = nats://h:4222\nsite = >\n", "bad site" },
        { "[forward]\nnats = http://h:4222\nsite = s\n", "bad nats URL 'http://h:4222'" },
        { "[forward]\nnats = nats://h:4222,\nsite = s\n", "bad nats URL" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nstream = A.B\n", "bad stream 'A.B'" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nsubject_prefix = a..b\n", "bad subject_prefix" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nsubject_prefix = a.>\n", "bad subject_prefix" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nmax_inflight = 0\n", "bad max_inflight" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nnkey_seed = f\n", "nkey and nkey_seed go together" },
        { "[forward]\nnats = nats://h:4222\nsite = s\ntls_cert = c\n", "tls_cert and tls_key go together" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nsite = t\n", "duplicate key 'site' in [forward]" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nsubject = x\n", "unknown key 'subject' in [forward]" },
        { "[forward]\nnats = nats://h:4222\nsite = s\n[forward]\n", "duplicate section [forward]" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nrma_feed = on\n", "bad rma_feed 'on' (expected yes or no)" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nrma_feed = yes\nrma_consumer = a.b\n", "bad rma_consumer 'a.b'" },
        { "[forward]\nnats = nats://h:4222\nsite = s\nrma_consumer = c\n", "rma_consumer without rma_feed = yes" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024], *err;
        snprintf(text, sizeof(text), "%s%s", BASE, bad[i].text);
        config_t *cfg = parse(text, &err);
        CU_ASSERT_PTR_NULL(cfg);
        if (!err || !strstr(err, bad[i].msg))
            fprintf(stderr, "\n  case %zu: expected '%s', got '%s'\n", i, bad[i].msg,
                    err ? err : "(none)");
        CU_ASSERT_PTR_NOT_NULL(err ? strstr(err, bad[i].msg) : NULL);
        free(err);
        config_destroy(&cfg);
    }
}

/* The mark: 0 until set, moves forward only, survives a reopen. */
static void test_mark(void)
{
    db_t *db = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &err), 0);
    uint64_t seq = 99;
    int64_t ms = 99;
    CU_ASSERT_EQUAL(db_sink_mark_get(db, "jetstream", &seq, &ms), 0);
    CU_ASSERT_EQUAL(seq, 0);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(db_sink_mark_set(db, "jetstream", 5, 1000), 0);
    CU_ASSERT_EQUAL(db_sink_mark_set(db, "jetstream", 7, 2000), 0);
    CU_ASSERT_EQUAL(db_sink_mark_set(db, "jetstream", 6, 3000), -EPERM);
    CU_ASSERT_EQUAL(db_sink_mark_set(db, "other", 1, 4000), 0);
    db_close(&db);
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &err), 0);
    CU_ASSERT_EQUAL(db_sink_mark_get(db, "jetstream", &seq, &ms), 0);
    CU_ASSERT_EQUAL(seq, 7);
    CU_ASSERT_EQUAL(ms, 2000);
    CU_ASSERT_EQUAL(db_sink_mark_get(db, "other", &seq, &ms), 0);
    CU_ASSERT_EQUAL(seq, 1);
    db_close(&db);
}

static void test_end_to_end(void)
{
    char build[4096];
    snprintf(build, sizeof(build), "%s", th_build_dir());
    char *argv[] = { "/usr/bin/python3", "tests/integration/forward_e2e.py", build, NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, "forward e2e: all checks passed");
    th_proc_free(&p);
}

/* RMAs from the stream: applied as rma import applies them, refused ones terminated. */
static void test_rma_feed(void)
{
    char build[4096];
    snprintf(build, sizeof(build), "%s", th_build_dir());
    char *argv[] = { "/usr/bin/python3", "tests/integration/rma_feed_e2e.py", build, NULL };
    th_proc_t p;
    CU_ASSERT_FATAL(th_run(argv, NULL, &p) == 0);
    if (p.status != 0)
        fprintf(stderr, "\n%s%s\n", p.out, p.err);
    CU_ASSERT_EQUAL(p.status, 0);
    ASSERT_CONTAINS(p.out, "rma feed e2e: all checks passed");
    th_proc_free(&p);
}

int suite_forward(void)
{
    CU_pSuite s = CU_add_suite("forward", th_tmpdb_setup, th_tmpdb_teardown);
    if (!s ||
        !CU_add_test(s, "[forward] config: defaults, URLs, paths", test_config_defaults) ||
        !CU_add_test(s, "[forward] config: every error named", test_config_errors) ||
        !CU_add_test(s, "the durable mark moves forward only", test_mark) ||
        !CU_add_test(s, "two sites into one stream, SIGKILLs, nats-server restart, old mark",
                     test_end_to_end) ||
        !CU_add_test(s, "the RMA feed: upserts applied once, a bad one terminated, logged",
                     test_rma_feed))
        return -1;
    return 0;
}
