/*
 * event: the envelope of spec events, and the outbox that stores events in the
 * transaction of their change (daemon/outbox.h), on a real SQLite file. What the
 * outbox stored is read back with db_outbox_foreach, the replay path.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caldate.h"
#include "daemon/outbox.h"
#include "db/db.h"
#include "proto/event.h"
#include "tests/helpers.h"
#include "tests/suites.h"

/* 2026-11-21T09:30:00.123Z in Unix ms, computed from the calendar, not the code under test. */
static int64_t t_example(void)
{
    return (int64_t)caldate_from_ymd(2026, 11, 21) * 86400000 + (9 * 3600 + 30 * 60) * 1000 + 123;
}

static void test_time_format(void)
{
    char b[EVENT_TIME_STRLEN];

    CU_ASSERT_EQUAL(event_time_format(t_example(), b), 0);
    ASSERT_STR(b, "2026-11-21T09:30:00.123Z");
    CU_ASSERT_EQUAL(event_time_format(0, b), 0);
    ASSERT_STR(b, "1970-01-01T00:00:00.000Z");
    CU_ASSERT_EQUAL(event_time_format(EVENT_TIME_MAX_MS, b), 0);
    ASSERT_STR(b, "9999-12-31T23:59:59.999Z");
    /* A leap day and the last millisecond of a day. */
    int64_t leap = (int64_t)caldate_from_ymd(2024, 2, 29) * 86400000;
    CU_ASSERT_EQUAL(event_time_format(leap + 86399999, b), 0);
    ASSERT_STR(b, "2024-02-29T23:59:59.999Z");
    CU_ASSERT_EQUAL(event_time_format(-1, b), -ERANGE);
    ASSERT_STR(b, "");
    CU_ASSERT_EQUAL(event_time_format(EVENT_TIME_MAX_MS + 1, b), -ERANGE);
}

static void test_topic_valid(void)
{
    CU_ASSERT_TRUE(event_topic_valid("inspection.completed"));
    CU_ASSERT_TRUE(event_topic_valid("daemon.started"));
    CU_ASSERT_TRUE(event_topic_valid("x"));
    CU_ASSERT_FALSE(event_topic_valid(NULL));
    CU_ASSERT_FALSE(event_topic_valid(""));
    CU_ASSERT_FALSE(event_topic_valid(".scan"));
    CU_ASSERT_FALSE(event_topic_valid("scan."));
    CU_ASSERT_FALSE(event_topic_valid("Scan.Accepted"));
    CU_ASSERT_FALSE(event_topic_valid("scan accepted"));
    char long_topic[EVENT_TOPIC_MAX + 2];
    memset(long_topic, 'a', sizeof(long_topic) - 1);
    long_topic[EVENT_TOPIC_MAX + 1] = '\0';
    CU_ASSERT_FALSE(event_topic_valid(long_topic));
    long_topic[EVENT_TOPIC_MAX] = '\0';
    CU_ASSERT_TRUE(event_topic_valid(long_topic));
}

static void test_envelope(void)
{
    json_t *ev = event_new("receipt.opened", 42, t_example(), "dock1", 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_EQUAL(json_object_set_new(ev, "rma", json_string("RMA-1001")), 0);
    char *s = event_dump(ev);
    ASSERT_STR(s, "{\"v\":1,\"seq\":42,\"type\":\"receipt.opened\","
                  "\"time\":\"2026-11-21T09:30:00.123Z\",\"station\":\"dock1\",\"receipt\":7,"
                  "\"rma\":\"RMA-1001\"}");
    free(s);
    json_decref(ev);

    /* No station, no receipt: the keys are absent, not null. */
    ev = event_new("daemon.started", 1, 0, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    s = event_dump(ev);
    ASSERT_STR(s, "{\"v\":1,\"seq\":1,\"type\":\"daemon.started\","
                  "\"time\":\"1970-01-01T00:00:00.000Z\"}");
    free(s);
    json_decref(ev);

    /* The largest seq SQLite can store. */
    ev = event_new("scan.accepted", (uint64_t)INT64_MAX, 0, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(ev);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "seq")), INT64_MAX);
    json_decref(ev);
}

static void test_envelope_refused(void)
{
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", 0, 0, NULL, 0));
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", (uint64_t)INT64_MAX + 1, 0, NULL, 0));
    CU_ASSERT_PTR_NULL(event_new("", 1, 0, NULL, 0));
    CU_ASSERT_PTR_NULL(event_new(NULL, 1, 0, NULL, 0));
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", 1, -1, NULL, 0));
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", 1, 0, "", 0));
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", 1, 0, "dock1", -3));
    CU_ASSERT_PTR_NULL(event_new("scan.accepted", 1, 0, "\xff\xfe", 0));   /* not UTF-8 */
    CU_ASSERT_PTR_NULL(event_dump(NULL));
    json_t *a = json_array();
    CU_ASSERT_PTR_NULL(event_dump(a));
    json_decref(a);
}

/* ---------------------------------------------------------------- outbox ------- */



static db_t *fresh_db(const char *name)
{
    char path[4200];
    db_t *db = NULL;
    char *err = NULL;
    snprintf(path, sizeof(path), "%s/%s", th_tmpdb_dir(), name);
    CU_ASSERT_EQUAL(db_open(path, &db, &err), 0);
    free(err);
    return db;
}

typedef struct {
    size_t n;
    char topics[8][EVENT_TOPIC_MAX + 1];
    char *bodies[8];
    int fail_at;   /* 1-based call that fails, 0 none */
} sink_t;

static int sink(const char *topic, const char *body, size_t len, void *data)
{
    sink_t *s = data;
    CU_ASSERT_EQUAL(strlen(body), len);
    if (s->n < 8) {
        snprintf(s->topics[s->n], sizeof(s->topics[0]), "%s", topic);
        s->bodies[s->n] = strdup(body);
    }
    s->n++;
    return (int)s->n == s->fail_at ? -EAGAIN : 0;
}

static void sink_free(sink_t *s)
{
    for (size_t i = 0; i < 8; i++)
        free(s->bodies[i]);
    memset(s, 0, sizeof(*s));
}

typedef struct {
    size_t n;
    uint64_t seq[8];
    char *body[8];
} stored_t;

static int collect(const db_event_t *ev, void *data)
{
    stored_t *s = data;
    if (s->n < 8) {
        s->seq[s->n] = ev->seq;
        s->body[s->n] = strdup(ev->body);
    }
    s->n++;
    return 0;
}

static void stored_free(stored_t *s)
{
    for (size_t i = 0; i < 8; i++)
        free(s->body[i]);
    memset(s, 0, sizeof(*s));
}

static void test_outbox_commit_then_flush(void)
{
    db_t *db = fresh_db("commit.db");
    outbox_t *ob = outbox_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);

    json_t *f = json_pack("{s:s, s:i}", "rma", "RMA-1001", "n", 3);
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "receipt.opened", f, "dock1", 5, t_example()), 0);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, "dock1", 0, t_example() + 1), 0);
    json_decref(f);
    CU_ASSERT_EQUAL(outbox_pending(ob), 2);
    const char *topic, *body;
    uint64_t seq;
    CU_ASSERT_EQUAL(outbox_pending_get(ob, 1, &topic, &body, &seq), 0);
    ASSERT_STR(topic, "scan.accepted");
    CU_ASSERT_EQUAL(seq, 2);
    CU_ASSERT_EQUAL(outbox_pending_get(ob, 2, NULL, NULL, NULL), -ERANGE);
    CU_ASSERT_EQUAL(db_commit(db), 0);

    sink_t s = { 0 };
    CU_ASSERT_EQUAL(outbox_flush(ob, sink, &s), 0);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(outbox_pending(ob), 0);
    ASSERT_STR(s.topics[0], "receipt.opened");
    ASSERT_STR(s.bodies[0], "{\"v\":1,\"seq\":1,\"type\":\"receipt.opened\","
                            "\"time\":\"2026-11-21T09:30:00.123Z\",\"station\":\"dock1\","
                            "\"receipt\":5,\"rma\":\"RMA-1001\",\"n\":3}");
    ASSERT_STR(s.bodies[1], "{\"v\":1,\"seq\":2,\"type\":\"scan.accepted\","
                            "\"time\":\"2026-11-21T09:30:00.124Z\",\"station\":\"dock1\"}");

    /* Replay sends exactly what was published live. */
    stored_t st = { 0 };
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 1, 0, collect, &st), 0);
    CU_ASSERT_EQUAL(st.n, 2);
    ASSERT_STR(st.body[0], s.bodies[0]);
    ASSERT_STR(st.body[1], s.bodies[1]);
    stored_free(&st);
    sink_free(&s);

    outbox_destroy(&ob);
    CU_ASSERT_PTR_NULL(ob);
    outbox_destroy(&ob);    /* NULL is fine */
    outbox_destroy(NULL);
    db_close(&db);
}

static void test_outbox_rollback_gives_seq_back(void)
{
    db_t *db = fresh_db("rollback.db");
    outbox_t *ob = outbox_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);

    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, "dock1", 0, 1000), 0);
    CU_ASSERT_EQUAL(db_rollback(db), 0);
    outbox_discard(ob);
    CU_ASSERT_EQUAL(outbox_pending(ob), 0);

    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.rejected", NULL, "dock1", 0, 1000), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    uint64_t seq = 0;
    CU_ASSERT_EQUAL(outbox_pending_get(ob, 0, NULL, NULL, &seq), 0);
    CU_ASSERT_EQUAL(seq, 1);   /* the rolled-back event's number was given back */

    /* A failed send does not stop the others, and everything is forgotten. */
    sink_t s = { .fail_at = 1 };
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, NULL, 0, 1000), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    CU_ASSERT_EQUAL(outbox_flush(ob, sink, &s), -EAGAIN);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(outbox_pending(ob), 0);
    sink_free(&s);

    uint64_t last = 0;
    CU_ASSERT_EQUAL(db_outbox_last_seq(db, &last), 0);
    CU_ASSERT_EQUAL(last, 2);
    outbox_destroy(&ob);
    db_close(&db);
}

static void test_outbox_refuses(void)
{
    db_t *db = fresh_db("refuse.db");
    outbox_t *ob = outbox_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(db);

    /* Outside a transaction the seq could race: refused. */
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, NULL, 0, 1000), -EINVAL);

    CU_ASSERT_EQUAL(db_begin(db), 0);
    json_t *shadow = json_pack("{s:i}", "seq", 99);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", shadow, NULL, 0, 1000), -EINVAL);
    json_decref(shadow);
    json_t *arr = json_array();
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", arr, NULL, 0, 1000), -EINVAL);
    json_decref(arr);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "Bad Topic", NULL, NULL, 0, 1000), -EINVAL);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, "", 0, 1000), -EINVAL);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, NULL, -1, 1000), -EINVAL);
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, NULL, 0, -5), -EINVAL);
    CU_ASSERT_EQUAL(outbox_pending(ob), 0);
    /* Nothing was stored either: the next seq is still 1. */
    CU_ASSERT_EQUAL(outbox_append(ob, db, "scan.accepted", NULL, NULL, 0, 1000), 0);
    uint64_t seq = 0;
    CU_ASSERT_EQUAL(outbox_pending_get(ob, 0, NULL, NULL, &seq), 0);
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    outbox_destroy(&ob);
    db_close(&db);
}

int suite_event(void)
{
    CU_pSuite s = CU_add_suite("event", th_tmpdb_setup, th_tmpdb_teardown);
    if (!s)
        return -1;
    if (!CU_add_test(s, "RFC 3339 times with milliseconds", test_time_format) ||
        !CU_add_test(s, "topic names", test_topic_valid) ||
        !CU_add_test(s, "envelope fields and order", test_envelope) ||
        !CU_add_test(s, "envelope refuses bad values", test_envelope_refused) ||
        !CU_add_test(s, "outbox: stored in the transaction, flushed after commit",
                     test_outbox_commit_then_flush) ||
        !CU_add_test(s, "outbox: rollback gives the seq back; failed sends",
                     test_outbox_rollback_gives_seq_back) ||
        !CU_add_test(s, "outbox: refuses bad events and stores nothing", test_outbox_refuses))
        return -1;
    return 0;
}
