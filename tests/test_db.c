/*
 * db: a real SQLite file in a temp directory per test. The second connection the
 * tests open with sqlite3_open() plays the independent reader: it checks what is
 * on disk, not what the module says.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#include "db/db.h"
#include "db/db_internal.h"
#include "db/maint.h"
#include "tests/helpers.h"
#include "tests/suites.h"



/* Each test starts from no database file at all. */
static db_t *fresh(void)
{
    db_t *db = NULL;
    char *err = NULL;
    char wal[4200], shm[4200];

    snprintf(wal, sizeof(wal), "%s-wal", th_tmpdb_path());
    snprintf(shm, sizeof(shm), "%s-shm", th_tmpdb_path());
    (void)remove(th_tmpdb_path());
    (void)remove(wal);
    (void)remove(shm);
    int r = db_open(th_tmpdb_path(), &db, &err);
    if (r < 0)
        fprintf(stderr, "\n  db_open: %d %s\n", r, err ? err : "(null)");
    CU_ASSERT_EQUAL(r, 0);
    CU_ASSERT_PTR_NULL(err);
    free(err);
    return db;
}

static db_t *reopen(db_t **db)
{
    char *err = NULL;
    db_close(db);
    CU_ASSERT_PTR_NULL(*db);
    int r = db_open(th_tmpdb_path(), db, &err);
    CU_ASSERT_EQUAL(r, 0);
    free(err);
    return *db;
}

/* One integer from SQL on an independent connection; -1 on failure. */
static long long peek_int(const char *sql)
{
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_open_v2(th_tmpdb_path(), &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(s, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(s);
    return v;
}

/* Run SQL on an independent read-write connection; returns the SQLite code. */
static int poke(const char *sql)
{
    sqlite3 *s = NULL;
    int rc = sqlite3_open_v2(th_tmpdb_path(), &s, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s, sql, NULL, NULL, NULL);
    sqlite3_close(s);
    return rc;
}

/* ------------------------------------------------------------- open ----------- */

static void test_open_migrates_fresh_file(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT(db_schema_version() >= 1);
    CU_ASSERT_EQUAL(peek_int("PRAGMA user_version"), db_schema_version());
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                             "('rmas', 'receipts', 'scans', 'outbox')"), 4);
    /* WAL is a property of the file: an independent connection sees it. */
    CU_ASSERT_EQUAL(peek_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    ASSERT_STR(db_errmsg(db), "");
    db_close(&db);
    db_close(&db);   /* NULL is fine */
    db_close(NULL);
}

static void test_reopen_is_noop(void)
{
    db_t *db = fresh();
    db_rma_t rma;
    char *msg = NULL;
    CU_ASSERT_FATAL(db != NULL);

    db_rma_init(&rma);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "number", "RMA-1001", &msg), 0);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "issued", "2026-11-10", &msg), 0);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "vendor", "EverFocus", &msg), 0);
    CU_ASSERT_EQUAL(db_rma_upsert(db, &rma, NULL), 0);
    long long schema = peek_int("SELECT count(*) FROM sqlite_schema");

    reopen(&db);
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL(peek_int("PRAGMA user_version"), db_schema_version());
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM sqlite_schema"), schema);
    CU_ASSERT_EQUAL(db_rma_get(db, "RMA-1001", &rma), 0);
    db_close(&db);
}

static void test_newer_schema_refused(void)
{
    db_t *db = fresh();
    char *err = NULL, sql[64];
    CU_ASSERT_FATAL(db != NULL);
    db_close(&db);

    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", db_schema_version() + 1);
    CU_ASSERT_EQUAL(poke(sql), SQLITE_OK);
    CU_ASSERT_EQUAL(db_open(th_tmpdb_path(), &db, &err), -ENOTSUP);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_FATAL(err != NULL);
    CU_ASSERT(strstr(err, th_tmpdb_path()) == err);
    CU_ASSERT(strstr(err, "newer than this rmad") != NULL);
    free(err);
}

static void test_open_errors(void)
{
    db_t *db = NULL;
    char *err = NULL, *path = NULL;

    /* The directory is not created: a typo in the config must not scatter files. */
    CU_ASSERT_FATAL(asprintf(&path, "%s/no/such/dir/rmad.db", th_tmpdb_dir()) > 0);
    CU_ASSERT(db_open(path, &db, &err) < 0);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT(err != NULL && strstr(err, path) == err);
    free(err);
    free(path);

    /* Not a database. */
    err = NULL;
    CU_ASSERT_FATAL(asprintf(&path, "%s/junk.db", th_tmpdb_dir()) > 0);
    CU_ASSERT_EQUAL(th_write_file(path, "this is not an SQLite file, but it is long enough "
                                        "to have a header, really, 100 bytes and more of it "
                                        "..........................................\n"), 0);
    CU_ASSERT_EQUAL(db_open(path, &db, &err), -EBADMSG);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT(err != NULL);
    free(err);
    free(path);
}

static void test_transactions(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_FALSE(db_in_transaction(db));
    CU_ASSERT_EQUAL(db_commit(db), -EINVAL);
    CU_ASSERT_EQUAL(db_rollback(db), 0);
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_TRUE(db_in_transaction(db));
    CU_ASSERT_EQUAL(db_begin(db), -EINVAL);
    CU_ASSERT(strstr(db_errmsg(db), "already open") != NULL);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    CU_ASSERT_FALSE(db_in_transaction(db));

    /* Closing with a transaction open rolls it back. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 1, "daemon.started",
                                     "{\"v\":1,\"seq\":1,\"type\":\"daemon.started\"}"), 0);
    reopen(&db);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM outbox"), 0);
    db_close(&db);
}

/* ----------------------------------------------------------- RMAs ------------- */

static void test_rma_fields_and_validate(void)
{
    db_rma_t rma;
    char *msg = NULL;
    regex_t re;

    db_rma_init(&rma);
    CU_ASSERT_EQUAL(rma.issued, CALDATE_NONE);
    CU_ASSERT_EQUAL(rma.kind, DB_RMA_KIND_UNSET);
    CU_ASSERT_EQUAL(rma.proof_of_purchase, DB_UNSET);

    CU_ASSERT_EQUAL(db_rma_validate(&rma, NULL, &msg), -EINVAL);
    ASSERT_STR(msg, "number: required");
    free(msg);

    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "number", " RMA-1001 ", &msg), 0);
    ASSERT_STR(rma.number, "RMA-1001");
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "issued", "2026-11-10", &msg), 0);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "vendor", "EverFocus", &msg), 0);
    CU_ASSERT_EQUAL(db_rma_validate(&rma, NULL, &msg), 0);
    CU_ASSERT_PTR_NULL(msg);

    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "Kind", "Advance_Replacement", &msg), 0);
    CU_ASSERT_EQUAL(rma.kind, DB_RMA_KIND_ADVANCE_REPLACEMENT);
    ASSERT_STR(db_rma_kind_name(rma.kind), "advance_replacement");
    CU_ASSERT_PTR_NULL(db_rma_kind_name(DB_RMA_KIND_UNSET));
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "order_value", "1250.50", &msg), 0);
    CU_ASSERT(rma.has_order_value && rma.order_value == 1250.5);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "order_value", "", &msg), 0);
    CU_ASSERT_FALSE(rma.has_order_value);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "has_storage_media", "YES", &msg), 0);
    CU_ASSERT_EQUAL(rma.has_storage_media, 1);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "proof_of_purchase", "0", &msg), 0);
    CU_ASSERT_EQUAL(rma.proof_of_purchase, 0);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "warranty_months", "36", &msg), 0);
    CU_ASSERT_EQUAL(rma.warranty_months, 36);

    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "issued", "2026-02-30", &msg), -EINVAL);
    ASSERT_STR(msg, "issued: expected YYYY-MM-DD, got \"2026-02-30\"");
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "colour", "red", &msg), -ENOENT);
    ASSERT_STR(msg, "unknown field \"colour\"");
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "order_value", "-1", &msg), -EINVAL);
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "order_value", "1e3", &msg), -EINVAL);
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "warranty_months", "1201", &msg), -EINVAL);
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "model", "bad\x01" "byte", &msg), -EINVAL);
    ASSERT_STR(msg, "model: control character in value");
    free(msg);
    CU_ASSERT_EQUAL(db_rma_set_field(&rma, "model", "caf\xc3", &msg), -EINVAL);
    ASSERT_STR(msg, "model: not valid UTF-8");
    free(msg);

    /* Struct filled directly (the JSON path) is checked as well. */
    rma.warranty_months = 5000;
    CU_ASSERT_EQUAL(db_rma_validate(&rma, NULL, &msg), -EINVAL);
    ASSERT_STR(msg, "warranty_months: expected whole months 0..1200");
    free(msg);
    rma.warranty_months = 36;

    /* The number pattern: default, then a site's own. */
    snprintf(rma.number, sizeof(rma.number), "rma1001");
    CU_ASSERT_EQUAL(db_rma_validate(&rma, NULL, &msg), -EINVAL);
    ASSERT_STR(msg, "number: \"rma1001\" does not match ^RMA-?[0-9A-Z]{4,20}$");
    free(msg);
    CU_ASSERT_EQUAL_FATAL(regcomp(&re, "^rma[0-9]+$", REG_EXTENDED | REG_NOSUB), 0);
    CU_ASSERT_EQUAL(db_rma_validate(&rma, &re, &msg), 0);
    snprintf(rma.number, sizeof(rma.number), "RMA-1001");
    CU_ASSERT_EQUAL(db_rma_validate(&rma, &re, &msg), -EINVAL);
    ASSERT_STR(msg, "number: \"RMA-1001\" does not match the RMA number pattern");
    free(msg);
    regfree(&re);
}

static void test_rma_get_and_mark_received(void)
{
    db_t *db = fresh();
    db_rma_t rma, got;
    db_upsert_t what;
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_EQUAL(db_rma_get(db, "RMA-9999", &got), -ENOENT);
    CU_ASSERT(strstr(db_errmsg(db), "RMA-9999") != NULL);
    CU_ASSERT_EQUAL(db_rma_mark_received(db, "RMA-9999"), -ENOENT);

    db_rma_init(&rma);
    snprintf(rma.number, sizeof(rma.number), "RMA-2001");
    snprintf(rma.vendor, sizeof(rma.vendor), "V7");
    snprintf(rma.family, sizeof(rma.family), "Solid State Drives");
    rma.issued = caldate_from_ymd(2026, 11, 12);
    rma.purchased = caldate_from_ymd(2025, 1, 10);
    rma.kind = DB_RMA_KIND_CREDIT;
    rma.has_order_value = true;
    rma.order_value = 99.95;
    rma.has_storage_media = 1;
    CU_ASSERT_EQUAL(db_rma_upsert(db, &rma, &what), 0);
    CU_ASSERT_EQUAL(what, DB_UPSERT_INSERTED);

    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-2001", &got), 0);
    ASSERT_STR(got.number, "RMA-2001");
    ASSERT_STR(got.vendor, "V7");
    ASSERT_STR(got.family, "Solid State Drives");
    ASSERT_STR(got.model, "");
    CU_ASSERT_EQUAL(got.issued, rma.issued);
    CU_ASSERT_EQUAL(got.purchased, rma.purchased);
    CU_ASSERT_EQUAL(got.shipped, CALDATE_NONE);
    CU_ASSERT_EQUAL(got.kind, DB_RMA_KIND_CREDIT);
    CU_ASSERT(got.has_order_value && got.order_value == 99.95);
    CU_ASSERT_EQUAL(got.warranty_months, DB_UNSET);
    CU_ASSERT_EQUAL(got.has_storage_media, 1);
    CU_ASSERT_EQUAL(got.proof_of_purchase, DB_UNSET);
    CU_ASSERT_EQUAL(got.status, DB_RMA_OPEN);
    CU_ASSERT(got.imported_at != DB_TIME_NONE && got.updated_at >= got.imported_at);
    /* Stored as text dates, readable at the sqlite3 prompt. */
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas WHERE issued = '2026-11-12' AND "
                             "kind = 'credit'"), 1);
    /* The product facts are the RMA's one line (schema 4). */
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rma_lines WHERE rma = 'RMA-2001' AND line = 1 "
                             "AND quantity = 1 AND shipped IS NULL AND purchased = '2025-01-10'"), 1);
    CU_ASSERT_EQUAL(got.line, 1);
    CU_ASSERT_EQUAL(got.quantity, 1);
    CU_ASSERT_EQUAL(got.lines, 1);
    CU_ASSERT_EQUAL(got.authorised, 1);
    CU_ASSERT_EQUAL(got.received, 0);

    CU_ASSERT_EQUAL(db_rma_upsert(db, &rma, &what), 0);
    CU_ASSERT_EQUAL(what, DB_UPSERT_UNCHANGED);
    CU_ASSERT_EQUAL(db_rma_mark_received(db, "RMA-2001"), 0);
    CU_ASSERT_EQUAL(db_rma_mark_received(db, "RMA-2001"), -EALREADY);
    CU_ASSERT_EQUAL(db_rma_get(db, "RMA-2001", &got), 0);
    CU_ASSERT_EQUAL(got.status, DB_RMA_RECEIVED);

    /* A re-import updates the fields but never reopens a received RMA. */
    snprintf(rma.model, sizeof(rma.model), "SSD-1T");
    CU_ASSERT_EQUAL(db_rma_upsert(db, &rma, &what), 0);
    CU_ASSERT_EQUAL(what, DB_UPSERT_UPDATED);
    CU_ASSERT_EQUAL(db_rma_get(db, "RMA-2001", &got), 0);
    ASSERT_STR(got.model, "SSD-1T");
    CU_ASSERT_EQUAL(got.status, DB_RMA_RECEIVED);
    db_close(&db);
}

/* ------------------------------------------------------------ import ---------- */

static int import(db_t *db, const char *csv, db_import_report_t *rep, char **msg)
{
    return db_rma_import_csv(db, csv, strlen(csv), NULL, rep, msg);
}

static void test_import_happy_and_idempotent(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    db_rma_t got;
    char *msg = NULL;
    CU_ASSERT_FATAL(db != NULL);

    /* BOM, CRLF, columns in any order and any case, quoted comma, doubled quote,
     * empty optional values, no final newline. */
    const char *csv =
        "\xef\xbb\xbfVendor,number,issued,Model,kind,order_value,has_storage_media,family\r\n"
        "EverFocus,RMA-1001,2026-11-10,EPN4208,warranty,1250.00,false,Monitors\r\n"
        "\"QCT, Inc.\",RMA-1002,2026-11-11,\"D52B \"\"1U\"\"\",credit,,yes,Servers\r\n"
        "V7,RMA1003,2026-11-12,,,,,\"Solid State Drives\"";
    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), 0);
    CU_ASSERT_PTR_NULL(msg);
    CU_ASSERT_EQUAL(rep.rows, 3);
    CU_ASSERT_EQUAL(rep.inserted, 3);
    CU_ASSERT_EQUAL(rep.updated, 0);
    CU_ASSERT_EQUAL(rep.unchanged, 0);
    CU_ASSERT_EQUAL(rep.nerrors, 0);
    db_import_report_clear(&rep);

    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-1002", &got), 0);
    ASSERT_STR(got.vendor, "QCT, Inc.");
    ASSERT_STR(got.model, "D52B \"1U\"");
    CU_ASSERT_EQUAL(got.kind, DB_RMA_KIND_CREDIT);
    CU_ASSERT_FALSE(got.has_order_value);
    CU_ASSERT_EQUAL(got.has_storage_media, 1);
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA1003", &got), 0);
    CU_ASSERT_EQUAL(got.kind, DB_RMA_KIND_UNSET);
    ASSERT_STR(got.model, "");
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-1001", &got), 0);
    CU_ASSERT(got.has_order_value && got.order_value == 1250.0);
    CU_ASSERT_EQUAL(got.has_storage_media, 0);

    /* The same file again changes nothing. */
    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.inserted, 0);
    CU_ASSERT_EQUAL(rep.updated, 0);
    CU_ASSERT_EQUAL(rep.unchanged, 3);
    db_import_report_clear(&rep);

    /* One changed row, one new, one received RMA that stays received. */
    CU_ASSERT_EQUAL(db_rma_mark_received(db, "RMA-1001"), 0);
    const char *csv2 =
        "number,issued,vendor,model\n"
        "RMA-1001,2026-11-10,EverFocus,EPN4216\n"
        "RMA-1004,2026-11-13,SmartVue,\n";
    CU_ASSERT_EQUAL(import(db, csv2, &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.inserted, 1);
    CU_ASSERT_EQUAL(rep.updated, 1);
    CU_ASSERT_EQUAL(rep.unchanged, 0);
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(db_rma_get(db, "RMA-1001", &got), 0);
    ASSERT_STR(got.model, "EPN4216");
    ASSERT_STR(got.family, "");   /* the file is the whole truth for its rows */
    CU_ASSERT_EQUAL(got.status, DB_RMA_RECEIVED);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas"), 4);

    /* A header-only file is a valid, empty import. */
    CU_ASSERT_EQUAL(import(db, "number,issued,vendor\n", &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.rows, 0);
    db_import_report_clear(&rep);
    db_close(&db);
}

static void test_import_bad_rows_apply_nothing(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    char *msg = NULL;
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_EQUAL(import(db, "number,issued,vendor\nRMA-0001,2026-01-01,Keep\n", &rep, &msg), 0);
    db_import_report_clear(&rep);

    const char *csv =
        "number,issued,vendor,kind,purchased,order_value,warranty_months,proof_of_purchase\n" /* 1 */
        "RMA-1001,2026-11-10,EverFocus,warranty,2025-06-01,10,36,true\n"      /* 2 good */
        "RMA-1002,2026-02-30,EverFocus,,,,,\n"                                /* 3 */
        "RMA-1003,2026-11-10,EverFocus,gift,,,,\n"                            /* 4 */
        "RMA-1004,2026-11-10,,,,,,\n"                                         /* 5 */
        "rma-1005,2026-11-10,V7,,,,,\n"                                       /* 6 */
        "RMA-1006,2026-11-10,V7,,,,,maybe\n"                                  /* 7 */
        "RMA-1007,2026-11-10,V7,,,ten,,\n"                                    /* 8 */
        "RMA-1008,2026-11-10,V7,,,,13 months,\n"                              /* 9 */
        "RMA-1009,2026-11-10,V7\n"                                            /* 10 */
        "RMA-1001,2026-11-10,EverFocus,,,,,\n"                                /* 11 */
        "RMA-1010,2026-11-10,V\"7,,,,,\n"                                     /* 12 */
        "\n"                                                                  /* 13 blank */
        "RMA-1011,\"2026-11-10\nand more\",V7,,,,,\n"                         /* 14-15 */
        "RMA-1012,,V7,,1999-13-01,,,\n"                                       /* 16 */
        "RMA-1013,2026-11-10,\"V7\"x,,,,,\n"                                  /* 17 */
        "RMA-1014,2026-11-10,V7,,,,,\n";                                      /* 18 good */
    static const char *const want[] = {
        "line 3: issued: expected YYYY-MM-DD, got \"2026-02-30\"",
        "line 4: kind: expected warranty|credit|advance_replacement|otc_exchange, got \"gift\"",
        "line 5: vendor: required",
        "line 6: number: \"rma-1005\" does not match ^RMA-?[0-9A-Z]{4,20}$",
        "line 7: proof_of_purchase: expected true|false|yes|no|1|0, got \"maybe\"",
        "line 8: order_value: expected a plain decimal number >= 0 such as 1250.00, got \"ten\"",
        "line 9: warranty_months: expected whole months 0..1200, got \"13 months\"",
        "line 10: expected 8 fields as in the header, got 3",
        /* a second row of an RMA is its second line: the RMA's fields must agree */
        "line 11: kind: differs from line 2, the first row of RMA-1001 (an RMA's kind is "
        "the same on all its lines)",
        "line 12: quote inside an unquoted field (quote the whole field)",
        "line 14: issued: control character in value",
        "line 16: purchased: expected YYYY-MM-DD, got \"1999-13-01\"",
        "line 16: issued: required",
        "line 17: text after the closing quote of a field",
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);

    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL(rep.rows, 15);
    CU_ASSERT_EQUAL(rep.inserted + rep.updated + rep.unchanged, 0);
    CU_ASSERT_EQUAL(rep.errors_total, nwant);
    CU_ASSERT_EQUAL(rep.nerrors, nwant);
    for (size_t i = 0; i < nwant && i < rep.nerrors; i++)
        ASSERT_STR(rep.errors[i], want[i]);
    ASSERT_STR(msg, "line 3: issued: expected YYYY-MM-DD, got \"2026-02-30\" (and 13 more errors)");
    free(msg);
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(rep.errors, NULL);

    /* Nothing of the file, not even its good rows, reached the database. */
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas"), 1);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas WHERE number = 'RMA-0001'"), 1);
    db_close(&db);
}

static void test_import_header_errors(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    char *msg = NULL;
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_EQUAL(import(db, "", &rep, &msg), -EINVAL);
    ASSERT_STR(msg, "line 1: empty file: expected a header row naming the columns");
    free(msg);
    db_import_report_clear(&rep);

    /* Found by make fuzz (fuzz_csv): a header of empty names only, no byte stored. */
    CU_ASSERT_EQUAL(import(db, ",", &rep, &msg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(msg);
    free(msg);
    db_import_report_clear(&rep);

    CU_ASSERT_EQUAL(import(db, "number,issued,colour,number\nRMA-1001,2026-01-01,red,x\n",
                           &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(rep.nerrors, 3);
    CU_ASSERT(strncmp(rep.errors[0], "line 1: unknown column \"colour\" (known: number,", 47) == 0);
    ASSERT_STR(rep.errors[1], "line 1: column \"number\" appears twice");
    ASSERT_STR(rep.errors[2], "line 1: missing required column \"vendor\"");
    free(msg);
    db_import_report_clear(&rep);

    /* Quoted newline in the header is counted: the error names the next line. */
    CU_ASSERT_EQUAL(import(db, "\"number\",issued,vendor\n\nRMA-1001,2026-01-01\n", &rep, &msg),
                    -EINVAL);
    ASSERT_STR(msg, "line 3: expected 3 fields as in the header, got 2");
    free(msg);
    db_import_report_clear(&rep);

    CU_ASSERT_EQUAL(import(db, "number,issued,vendor\nRMA-1001,2026-01-01,\"V7\n", &rep, &msg),
                    -EINVAL);
    ASSERT_STR(msg, "line 2: quoted field not closed before the end of the file");
    free(msg);
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas"), 0);
    db_close(&db);
}

static void test_import_caps(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    char *msg = NULL, *csv, *p;
    size_t rows = DB_IMPORT_MAX_ROWS + 1, size = 64 + rows * 40;
    CU_ASSERT_FATAL(db != NULL);

    /* One row too many: refused as a whole, with no database work. */
    csv = malloc(size);
    CU_ASSERT_FATAL(csv != NULL);
    p = csv + sprintf(csv, "number,issued,vendor\n");
    for (size_t i = 0; i < rows; i++)
        p += sprintf(p, "RMA-%07zu,2026-11-10,V7\n", i);
    CU_ASSERT_EQUAL(db_rma_import_csv(db, csv, (size_t)(p - csv), NULL, &rep, &msg), -EINVAL);
    ASSERT_STR(msg, "line 100002: more than 100000 rows: split the file");
    free(msg);
    db_import_report_clear(&rep);

    /* The cap itself imports, in one transaction. */
    p[-(ptrdiff_t)strlen("RMA-0100000,2026-11-10,V7\n")] = '\0';
    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.inserted, DB_IMPORT_MAX_ROWS);
    db_import_report_clear(&rep);
    free(csv);

    /* Errors past the kept cap are counted. */
    size = 64 + 2000 * 32;
    csv = malloc(size);
    CU_ASSERT_FATAL(csv != NULL);
    p = csv + sprintf(csv, "number,issued,vendor\n");
    for (int i = 0; i < 2000; i++)
        p += sprintf(p, "RMA-%05d,someday,V7\n", i);
    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL(rep.nerrors, DB_IMPORT_MAX_ERRORS);
    CU_ASSERT_EQUAL(rep.errors_total, 2000);
    ASSERT_STR(rep.errors[DB_IMPORT_MAX_ERRORS - 1],
               "line 1001: issued: expected YYYY-MM-DD, got \"someday\"");
    free(msg);
    db_import_report_clear(&rep);
    free(csv);

    /* Over-long fields are reported, not cut. */
    char big[DB_IMPORT_MAX_FIELD + 200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *file = NULL;
    CU_ASSERT_FATAL(asprintf(&file, "number,issued,vendor,model\nRMA-1001,2026-01-01,V7,%s\n"
                                    "RMA-1002,2026-01-01,V7,%.129s\n", big, big) > 0);
    CU_ASSERT_EQUAL(import(db, file, &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(rep.nerrors, 2);
    ASSERT_STR(rep.errors[0], "line 2: model: longer than 4096 bytes");
    ASSERT_STR(rep.errors[1], "line 3: model: longer than 128 bytes");
    free(msg);
    free(file);
    db_import_report_clear(&rep);

    /* Inside a caller's transaction it refuses, rather than half-own it. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(import(db, "number,issued,vendor\n", &rep, &msg), -EINVAL);
    free(msg);
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(db_rollback(db), 0);
    db_close(&db);
}

/* ----------------------------------------------------------- receipts --------- */

static int collect_ids(const db_receipt_t *r, void *data)
{
    int64_t *ids = data;
    for (int i = 0; i < 8; i++)
        if (!ids[i]) {
            ids[i] = r->id;
            break;
        }
    return 0;
}

static void test_receipt_lifecycle(void)
{
    db_t *db = fresh();
    db_receipt_t r = { 0 }, got = { 0 };
    int64_t id, id2, id3, id4;
    uint64_t seq;
    CU_ASSERT_FATAL(db != NULL);

    /* Open on an RMA scan; the station has nothing open before. */
    CU_ASSERT_EQUAL(db_receipt_get_open(db, "dock-1", &got), -ENOENT);
    r.station = "dock-1";
    r.rma = "RMA-1001";
    r.state = DB_RECEIPT_OPEN;
    r.opened_at = 1790000000000;
    r.closed_at = 0;   /* ignored while open */
    CU_ASSERT_EQUAL(db_receipt_insert(db, &r, &id), 0);
    CU_ASSERT(id > 0);
    /* One open receipt per station. */
    CU_ASSERT_EQUAL(db_receipt_insert(db, &r, &id2), -EEXIST);

    /* The checklist as it fills, then a daemon restart: the station resumes. */
    r.id = id;
    r.serial = "EF123";
    r.checklist = "{\"packaging\":\"original\",\"seal\":\"intact\"}";
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), 0);
    reopen(&db);
    CU_ASSERT_EQUAL_FATAL(db_receipt_get_open(db, "dock-1", &got), 0);
    CU_ASSERT_EQUAL(got.id, id);
    ASSERT_STR(got.station, "dock-1");
    ASSERT_STR(got.rma, "RMA-1001");
    ASSERT_STR(got.serial, "EF123");
    ASSERT_STR(got.checklist, "{\"packaging\":\"original\",\"seal\":\"intact\"}");
    CU_ASSERT_EQUAL(got.state, DB_RECEIPT_OPEN);
    CU_ASSERT_EQUAL(got.opened_at, 1790000000000);
    CU_ASSERT_EQUAL(got.closed_at, DB_TIME_NONE);
    CU_ASSERT_PTR_NULL(got.result);
    db_receipt_clear(&got);
    db_receipt_clear(NULL);

    /* Completed without a disposition, or with a closed_at missing: refused. */
    r.state = DB_RECEIPT_COMPLETED;
    r.closed_at = 1790000060000;
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), -EINVAL);
    r.disposition = "warranty_repair";
    r.closed_at = DB_TIME_NONE;
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), -EINVAL);
    r.closed_at = 1790000060000;
    r.checklist = "{not json";
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), -EINVAL);
    r.checklist = "{\"packaging\":\"original\",\"seal\":\"intact\"}";

    /* CMD-DONE: receipt, RMA and event in one transaction. */
    r.result = "{\"disposition\":\"warranty_repair\",\"restocking_fee_pct\":0}";
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), 0);
    CU_ASSERT_EQUAL(db_outbox_next_seq(db, &seq), 0);
    CU_ASSERT_EQUAL(seq, 1);
    CU_ASSERT_EQUAL(db_outbox_insert(db, seq, "inspection.completed",
                                     "{\"v\":1,\"seq\":1,\"type\":\"inspection.completed\","
                                     "\"disposition\":\"warranty_repair\"}"), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM receipts WHERE state = 'completed' "
                             "AND closed_at = '2026-09-21T14:14:20.000Z'"), 1);

    /* Closed is final, for this code and for anyone at the sqlite3 prompt. */
    r.disposition = "restock";
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), -EPERM);
    CU_ASSERT(strstr(db_errmsg(db), "final") != NULL);
    CU_ASSERT_EQUAL(poke("UPDATE receipts SET disposition = 'restock'"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM receipts"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(db_receipt_get_open(db, "dock-1", &got), -ENOENT);
    r.id = 999;
    CU_ASSERT_EQUAL(db_receipt_update(db, &r), -ENOENT);

    /* Cancelled: kept, marked. CMD-NORMA: no RMA. Refused: closed at once. */
    db_receipt_t c = { .station = "dock-1", .rma = "RMA-1002", .state = DB_RECEIPT_OPEN,
                       .opened_at = 1790000100000, .closed_at = DB_TIME_NONE };
    CU_ASSERT_EQUAL(db_receipt_insert(db, &c, &id2), 0);
    c.id = id2;
    c.state = DB_RECEIPT_CANCELLED;
    c.closed_at = 1790000110000;
    c.reason = "CMD-CANCEL";
    CU_ASSERT_EQUAL(db_receipt_update(db, &c), 0);
    db_receipt_t n = { .station = "dock-2", .state = DB_RECEIPT_OPEN,
                       .opened_at = 1790000120000, .closed_at = DB_TIME_NONE };
    CU_ASSERT_EQUAL(db_receipt_insert(db, &n, &id3), 0);
    db_receipt_t f = { .station = "dock-1", .rma = "RMA-NOPE", .state = DB_RECEIPT_REFUSED,
                       .opened_at = 1790000130000, .closed_at = 1790000130000,
                       .reason = "unknown RMA" };
    CU_ASSERT_EQUAL(db_receipt_insert(db, &f, &id4), 0);

    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, id2, &got), 0);
    CU_ASSERT_EQUAL(got.state, DB_RECEIPT_CANCELLED);
    ASSERT_STR(got.reason, "CMD-CANCEL");
    db_receipt_clear(&got);
    CU_ASSERT_EQUAL_FATAL(db_receipt_get_open(db, "dock-2", &got), 0);
    CU_ASSERT_PTR_NULL(got.rma);
    db_receipt_clear(&got);
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, id4, &got), 0);
    CU_ASSERT_EQUAL(got.state, DB_RECEIPT_REFUSED);
    ASSERT_STR(db_receipt_state_name(got.state), "refused");
    db_receipt_clear(&got);
    CU_ASSERT_EQUAL(db_receipt_get(db, 12345, &got), -ENOENT);

    /* rmactl receipts: newest first, limited. */
    int64_t ids[8] = { 0 };
    CU_ASSERT_EQUAL(db_receipt_list_recent(db, 3, collect_ids, ids), 0);
    CU_ASSERT_EQUAL(ids[0], id4);
    CU_ASSERT_EQUAL(ids[1], id3);
    CU_ASSERT_EQUAL(ids[2], id2);
    CU_ASSERT_EQUAL(ids[3], 0);
    memset(ids, 0, sizeof(ids));
    CU_ASSERT_EQUAL(db_receipt_list_recent(db, 0, collect_ids, ids), 0);
    CU_ASSERT_EQUAL(ids[3], id);

    /* Missing required fields. */
    db_receipt_t bad = { .state = DB_RECEIPT_OPEN, .opened_at = 1, .closed_at = DB_TIME_NONE };
    CU_ASSERT_EQUAL(db_receipt_insert(db, &bad, NULL), -EINVAL);
    bad.station = "dock-9";
    bad.opened_at = 0;
    CU_ASSERT_EQUAL(db_receipt_insert(db, &bad, NULL), -EINVAL);
    db_close(&db);
}

/* ------------------------------------------------------------ scans ----------- */

struct seen_scans {
    int n;
    int64_t ids[4];
    int raw_ok, text_ok;
};

static const unsigned char raw1[] = { 'R', 'M', 'A', 0x00, 0xff, 0xfe, '\r', 0x1d, 'x' };

static int check_scan(const db_scan_t *s, void *data)
{
    struct seen_scans *seen = data;

    if (seen->n < 4)
        seen->ids[seen->n] = s->id;
    if (seen->n == 0) {
        seen->raw_ok = s->raw_len == sizeof(raw1) && memcmp(s->raw, raw1, sizeof(raw1)) == 0
                       && s->text == NULL && !s->accepted && s->reason
                       && strcmp(s->reason, "NUL byte in scan") == 0 && s->symbology == NULL
                       && s->at == 1790000000123;
    } else if (seen->n == 1) {
        seen->text_ok = s->text && strcmp(s->text, "]C1 01 09506000134352") != 0
                        && strcmp(s->text, "0109506000134352") == 0 && s->accepted
                        && s->symbology && strcmp(s->symbology, "]C1") == 0;
    }
    seen->n++;
    return 0;
}

static int stop_at_first(const db_scan_t *s, void *data)
{
    (void)s;
    (void)data;
    return 42;
}

static void test_scans_raw_bytes(void)
{
    db_t *db = fresh();
    db_receipt_t r = { .station = "dock-1", .rma = "RMA-1001", .state = DB_RECEIPT_OPEN,
                       .opened_at = 1790000000000, .closed_at = DB_TIME_NONE };
    int64_t rid, sid;
    struct seen_scans seen = { 0 };
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL_FATAL(db_receipt_insert(db, &r, &rid), 0);

    db_scan_t s = { .at = 1790000000123, .station = "dock-1", .scanner = "usb-0",
                    .raw = raw1, .raw_len = sizeof(raw1), .text = NULL, .kind = "invalid",
                    .accepted = false, .reason = "NUL byte in scan", .receipt_id = rid };
    CU_ASSERT_EQUAL(db_scan_insert(db, &s, &sid), 0);
    CU_ASSERT(sid > 0);
    db_scan_t g = { .at = 1790000000456, .station = "dock-1", .scanner = "usb-0",
                    .symbology = "]C1", .raw = "0109506000134352", .raw_len = 16,
                    .text = "0109506000134352", .kind = "gs1", .accepted = true,
                    .receipt_id = rid };
    CU_ASSERT_EQUAL(db_scan_insert(db, &g, NULL), 0);
    /* A scan outside any receipt (a stray scan, rejected) and an empty one. */
    db_scan_t stray = { .at = 1790000000789, .station = "dock-1", .scanner = "tcp-1",
                        .raw = "PKG-NONE", .raw_len = 8, .text = "PKG-NONE", .kind = "command",
                        .accepted = false, .reason = "no open receipt" };
    CU_ASSERT_EQUAL(db_scan_insert(db, &stray, NULL), 0);
    db_scan_t empty = { .at = 1790000000790, .station = "dock-1", .scanner = "tcp-1",
                        .raw = NULL, .raw_len = 0, .kind = "empty", .accepted = false,
                        .reason = "empty scan" };
    CU_ASSERT_EQUAL(db_scan_insert(db, &empty, NULL), 0);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM scans WHERE receipt_id IS NULL "
                             "AND typeof(raw) = 'blob'"), 2);

    /* Exact bytes back, across a restart. */
    reopen(&db);
    CU_ASSERT_EQUAL(db_scan_foreach_receipt(db, rid, check_scan, &seen), 0);
    CU_ASSERT_EQUAL(seen.n, 2);
    CU_ASSERT_EQUAL(seen.ids[0], sid);
    CU_ASSERT(seen.raw_ok);
    CU_ASSERT(seen.text_ok);
    CU_ASSERT_EQUAL(peek_int("SELECT length(raw) FROM scans WHERE id = 1"), (long long)sizeof(raw1));
    CU_ASSERT_EQUAL(db_scan_foreach_receipt(db, rid, stop_at_first, NULL), 42);

    /* What the audit trail refuses. */
    s.text = "caf\xc3";
    CU_ASSERT_EQUAL(db_scan_insert(db, &s, NULL), -EILSEQ);
    s.text = NULL;
    s.reason = NULL;   /* a rejection must say why */
    CU_ASSERT_EQUAL(db_scan_insert(db, &s, NULL), -EINVAL);
    s.reason = "x";
    s.receipt_id = 777;
    CU_ASSERT_EQUAL(db_scan_insert(db, &s, NULL), -ENOENT);
    s.receipt_id = 0;
    s.scanner = NULL;
    CU_ASSERT_EQUAL(db_scan_insert(db, &s, NULL), -EINVAL);
    CU_ASSERT_EQUAL(poke("UPDATE scans SET accepted = 1"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM scans"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM scans"), 4);
    db_close(&db);
}

/* ------------------------------------------------------------ outbox ---------- */

/* Append one event in its own transaction, as the daemon does. */
static int append(db_t *db, const char *topic, uint64_t *seq_out)
{
    uint64_t seq;
    char body[256];
    int r = db_begin(db);

    if (r == 0)
        r = db_outbox_next_seq(db, &seq);
    if (r == 0) {
        snprintf(body, sizeof(body), "{\"v\":1,\"seq\":%llu,\"type\":\"%s\",\"time\":"
                 "\"2026-11-21T09:30:00.000Z\"}", (unsigned long long)seq, topic);
        r = db_outbox_insert(db, seq, topic, body);
    }
    if (r == 0)
        r = db_commit(db);
    else
        (void)db_rollback(db);
    if (r == 0 && seq_out)
        *seq_out = seq;
    return r;
}

static void test_outbox_gapless_across_restarts(void)
{
    db_t *db = fresh();
    uint64_t seq = 99, last;
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_EQUAL(db_outbox_last_seq(db, &last), 0);
    CU_ASSERT_EQUAL(last, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        CU_ASSERT_EQUAL(append(db, "scan.accepted", &seq), 0);
        CU_ASSERT_EQUAL(seq, i);
    }
    reopen(&db);
    CU_ASSERT_EQUAL(db_outbox_last_seq(db, &last), 0);
    CU_ASSERT_EQUAL(last, 3);
    CU_ASSERT_EQUAL(append(db, "daemon.started", &seq), 0);
    CU_ASSERT_EQUAL(seq, 4);

    /* A rolled-back transaction consumes no number. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_next_seq(db, &seq), 0);
    CU_ASSERT_EQUAL(seq, 5);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 5, "receipt.opened",
                                     "{\"seq\":5,\"type\":\"receipt.opened\"}"), 0);
    CU_ASSERT_EQUAL(db_outbox_last_seq(db, &last), 0);
    CU_ASSERT_EQUAL(last, 5);
    CU_ASSERT_EQUAL(db_rollback(db), 0);
    CU_ASSERT_EQUAL(append(db, "receipt.opened", &seq), 0);
    CU_ASSERT_EQUAL(seq, 5);
    CU_ASSERT_EQUAL(peek_int("SELECT max(seq) = count(*) FROM outbox"), 1);

    /* The rules hold whatever the caller does. */
    CU_ASSERT_EQUAL(db_outbox_next_seq(db, &seq), -EINVAL);           /* no transaction */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 6, "x", "{\"seq\":6,\"type\":\"x\"}"), -EINVAL);
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 7, "x", "{\"seq\":7,\"type\":\"x\"}"), -EPERM); /* gap */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 5, "x", "{\"seq\":5,\"type\":\"x\"}"), -EPERM); /* reuse */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 6, "x", "{\"seq\":5,\"type\":\"x\"}"), -EINVAL); /* body seq */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 6, "x", "{\"seq\":6,\"type\":\"y\"}"), -EINVAL); /* body type */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 6, "x", "{\"seq\":6,"), -EINVAL);               /* not JSON */
    CU_ASSERT_EQUAL(db_outbox_insert(db, 0, "x", "{\"seq\":0,\"type\":\"x\"}"), -EINVAL);
    CU_ASSERT_EQUAL(db_rollback(db), 0);
    CU_ASSERT_EQUAL(poke("UPDATE outbox SET topic = 'y'"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM outbox WHERE seq = 5"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(db_outbox_last_seq(db, &last), 0);
    CU_ASSERT_EQUAL(last, 5);
    db_close(&db);
}

struct replay {
    uint64_t seqs[32];
    int n;
    int stop_after;
    int bodies_ok;
};

static int on_event(const db_event_t *ev, void *data)
{
    struct replay *rp = data;
    char want[64];

    snprintf(want, sizeof(want), "\"seq\":%llu,", (unsigned long long)ev->seq);
    if (!strstr(ev->body, want) || strlen(ev->body) != ev->body_len || !ev->topic
        || !ev->created_at || strlen(ev->created_at) != 24)
        rp->bodies_ok = 0;
    if (rp->n < 32)
        rp->seqs[rp->n] = ev->seq;
    rp->n++;
    return rp->stop_after && rp->n == rp->stop_after ? 7 : 0;
}

static void test_outbox_replay(void)
{
    db_t *db = fresh();
    struct replay rp;
    CU_ASSERT_FATAL(db != NULL);

    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(append(db, i % 2 ? "scan.accepted" : "scan.rejected", NULL), 0);

    memset(&rp, 0, sizeof(rp));
    rp.bodies_ok = 1;
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 4, 0, on_event, &rp), 0);
    CU_ASSERT_EQUAL(rp.n, 7);
    for (int i = 0; i < 7 && i < rp.n; i++)
        CU_ASSERT_EQUAL(rp.seqs[i], (uint64_t)(4 + i));
    CU_ASSERT(rp.bodies_ok);

    memset(&rp, 0, sizeof(rp));
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 0, 0, on_event, &rp), 0);
    CU_ASSERT_EQUAL(rp.n, 10);
    CU_ASSERT_EQUAL(rp.seqs[0], 1);

    memset(&rp, 0, sizeof(rp));
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 4, 3, on_event, &rp), 0);   /* a page */
    CU_ASSERT_EQUAL(rp.n, 3);
    CU_ASSERT_EQUAL(rp.seqs[2], 6);

    memset(&rp, 0, sizeof(rp));
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 11, 0, on_event, &rp), 0);  /* nothing newer */
    CU_ASSERT_EQUAL(rp.n, 0);
    CU_ASSERT_EQUAL(db_outbox_foreach(db, UINT64_MAX, 0, on_event, &rp), 0);
    CU_ASSERT_EQUAL(rp.n, 0);

    memset(&rp, 0, sizeof(rp));
    rp.stop_after = 2;
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 1, 0, on_event, &rp), 7);
    CU_ASSERT_EQUAL(rp.n, 2);

    /* The statement is reusable after a stop, and replay sees a reopened file. */
    reopen(&db);
    memset(&rp, 0, sizeof(rp));
    CU_ASSERT_EQUAL(db_outbox_foreach(db, 10, 0, on_event, &rp), 0);
    CU_ASSERT_EQUAL(rp.n, 1);
    db_close(&db);
}

/* A closed receipt to hang labels on. */
static int64_t closed_receipt(db_t *db, const char *station)
{
    db_receipt_t r = { .station = (char *)station, .rma = "RMA-1001",
                       .state = DB_RECEIPT_REFUSED, .opened_at = 1000, .closed_at = 1000,
                       .reason = "unknown RMA" };
    int64_t id = 0;
    CU_ASSERT_EQUAL(db_receipt_insert(db, &r, &id), 0);
    return id;
}

struct unfinished { int n; int64_t ids[8]; };

static int collect_unfinished(const db_print_job_t *j, void *data)
{
    struct unfinished *u = data;
    if (u->n < 8)
        u->ids[u->n] = j->id;
    u->n++;
    return 0;
}

static void test_print_queue(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);
    int64_t rid = closed_receipt(db, "dock1"), a = 0, b = 0, c = 0, last = -1;

    CU_ASSERT_EQUAL(db_print_last_receipt(db, "dock1", &last), 0);
    CU_ASSERT_EQUAL(last, 0);
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_print_enqueue(db, rid, "dock1", "zebra", DB_PRINT_REFUSAL, 5000, &a), 0);
    CU_ASSERT_EQUAL(db_print_enqueue(db, rid, "dock1", "zebra", DB_PRINT_REPRINT, 6000, &b), 0);
    CU_ASSERT_EQUAL(db_print_enqueue(db, rid + 99, "dock1", "zebra", DB_PRINT_REPRINT, 6000, &c),
                    -ENOENT);
    CU_ASSERT_EQUAL(db_print_enqueue(db, rid, "dock1", "", DB_PRINT_REPRINT, 6000, &c), -EINVAL);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    CU_ASSERT(a > 0 && b > a);
    CU_ASSERT_EQUAL(db_print_last_receipt(db, "dock1", &last), 0);
    CU_ASSERT_EQUAL(last, rid);

    db_print_job_t j;
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, a, &j), 0);
    CU_ASSERT_EQUAL(j.receipt_id, rid);
    ASSERT_STR(j.station, "dock1");
    ASSERT_STR(j.printer, "zebra");
    CU_ASSERT_EQUAL(j.why, DB_PRINT_REFUSAL);
    CU_ASSERT_EQUAL(j.state, DB_PRINT_QUEUED);
    CU_ASSERT_EQUAL(j.created_at, 5000);
    CU_ASSERT_EQUAL(j.attempts, 0);
    CU_ASSERT_EQUAL(j.cups_job, 0);
    CU_ASSERT_PTR_NULL(j.job_name);
    CU_ASSERT_PTR_NULL(j.job_uuid);
    CU_ASSERT_PTR_NULL(j.last_error);
    CU_ASSERT_EQUAL(j.done_at, DB_TIME_NONE);
    db_print_job_clear(&j);

    /* Only a submitting job can become submitted, only a job in CUPS printed. */
    CU_ASSERT_EQUAL(db_print_submitted(db, a, 17, "urn:uuid:x"), -EPERM);
    CU_ASSERT_EQUAL(db_print_printed(db, a, 9000), -EPERM);
    CU_ASSERT_EQUAL(db_print_submitting(db, a, 0, "rmad-label-1-0"), -EINVAL);

    /* An attempt that never got a job id, back to queued with its error. */
    CU_ASSERT_EQUAL(db_print_submitting(db, a, 1, "rmad-label-1-1"), 0);
    CU_ASSERT_EQUAL(db_print_submitting(db, a, 2, "rmad-label-1-2"), -EPERM);
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, a, &j), 0);
    CU_ASSERT_EQUAL(j.state, DB_PRINT_SUBMITTING);
    CU_ASSERT_EQUAL(j.attempts, 1);
    ASSERT_STR(j.job_name, "rmad-label-1-1");
    db_print_job_clear(&j);
    CU_ASSERT_EQUAL(db_print_retry(db, a, "printer stopped"), 0);

    /* The second attempt: submitting, then a CUPS job with its uuid. */
    CU_ASSERT_EQUAL(db_print_submitting(db, a, 2, "rmad-label-1-2"), 0);
    CU_ASSERT_EQUAL(db_print_submitted(db, a, 0, NULL), -EINVAL);
    CU_ASSERT_EQUAL(db_print_submitted(db, a, 17, "urn:uuid:1234"), 0);
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, a, &j), 0);
    CU_ASSERT_EQUAL(j.state, DB_PRINT_SUBMITTED);
    CU_ASSERT_EQUAL(j.attempts, 2);
    CU_ASSERT_EQUAL(j.cups_job, 17);
    ASSERT_STR(j.job_uuid, "urn:uuid:1234");
    ASSERT_STR(j.job_name, "rmad-label-1-2");
    ASSERT_STR(j.last_error, "printer stopped");
    db_print_job_clear(&j);

    struct unfinished u = { 0 };
    CU_ASSERT_EQUAL(db_print_foreach_unfinished(db, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 2);
    CU_ASSERT_EQUAL(u.ids[0], a);
    CU_ASSERT_EQUAL(u.ids[1], b);

    /* A label at the printer cannot be cancelled here; a waiting one can. */
    CU_ASSERT_EQUAL(db_print_cancel(db, a, "no", 9500), -EBUSY);
    CU_ASSERT_EQUAL(db_print_printed(db, a, 10000), 0);
    CU_ASSERT_EQUAL(db_print_cancel(db, b, "given up", 11000), 0);
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, b, &j), 0);
    CU_ASSERT_EQUAL(j.state, DB_PRINT_CANCELLED);
    ASSERT_STR(j.last_error, "given up");
    CU_ASSERT_EQUAL(j.done_at, 11000);
    db_print_job_clear(&j);

    /* A final failure. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_print_enqueue(db, rid, "dock2", "office", DB_PRINT_REPRINT, 12000, &c), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    CU_ASSERT_EQUAL(db_print_failed(db, c, "CUPS job 3 was cancelled", 12500), 0);

    /* Listing: by state and station, newest first. */
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_ALL, NULL, 0, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 3);
    CU_ASSERT_EQUAL(u.ids[0], c);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_ALL, "dock1", 1, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 1);
    CU_ASSERT_EQUAL(u.ids[0], b);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_PRINTED, NULL, 0, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 1);
    CU_ASSERT_EQUAL(u.ids[0], a);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_FAILED, NULL, 0, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 1);
    CU_ASSERT_EQUAL(u.ids[0], c);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_CANCELLED, NULL, 0, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 1);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach(db, DB_PRINT_LIST_WAITING, NULL, 0, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 0);

    /* Finished jobs are history: never changed, never deleted. */
    CU_ASSERT_EQUAL(db_print_retry(db, a, "again"), -EPERM);
    CU_ASSERT_EQUAL(db_print_submitted(db, b, 3, NULL), -EPERM);
    CU_ASSERT_EQUAL(db_print_failed(db, a, "late", 13000), -EPERM);
    CU_ASSERT_EQUAL(db_print_cancel(db, c, "late", 13000), -EPERM);
    CU_ASSERT_EQUAL(db_print_printed(db, 999, 12000), -ENOENT);
    CU_ASSERT_EQUAL(db_print_get(db, 999, &j), -ENOENT);
    u.n = 0;
    CU_ASSERT_EQUAL(db_print_foreach_unfinished(db, collect_unfinished, &u), 0);
    CU_ASSERT_EQUAL(u.n, 0);
    db_close(&db);

    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM print_jobs WHERE state = 'printed'"), 1);
    sqlite3 *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(th_tmpdb_path(), &raw), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(raw, "DELETE FROM print_jobs", NULL, NULL, NULL), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(raw, "UPDATE print_jobs SET state = 'queued'", NULL, NULL,
                                     NULL), SQLITE_OK);
    sqlite3_close(raw);
    ASSERT_STR(db_print_why_name(DB_PRINT_REPRINT), "reprint");
    ASSERT_STR(db_print_state_name(DB_PRINT_SUBMITTING), "submitting");
    ASSERT_STR(db_print_state_name(DB_PRINT_FAILED), "failed");
}

/*
 * A database of schema 2 (the print queue before it became a state machine) opens as
 * schema 3 with its labels: submitted jobs are still followed by id, old final
 * failures ("cancelled") are failed, and the history stays final.
 */
static void test_print_queue_migration(void)
{
    db_t *gone = fresh(); /* an empty path: fresh() removes the file, db_open makes it */
    db_close(&gone);
    (void)remove(th_tmpdb_path());
    sqlite3 *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(th_tmpdb_path(), &raw), SQLITE_OK);
    char *err = NULL;
    int rc = SQLITE_OK;
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(raw, db_migrations[i], NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  migration: %s\n", err);
    sqlite3_free(err);
    CU_ASSERT_EQUAL_FATAL(rc, SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(raw,
        "PRAGMA user_version = 2;\n"
        "INSERT INTO receipts (id, station, state, opened_at, closed_at)\n"
        "  VALUES (1, 'dock1', 'refused', '2026-11-21T06:00:00.000Z', '2026-11-21T06:00:00.000Z');\n"
        "INSERT INTO print_jobs (receipt_id, station, printer, why, state, created_at, next_at,\n"
        "                        attempts, cups_job, last_error, done_at) VALUES\n"
        "  (1, 'dock1', 'zebra', 'refusal', 'printed', '2026-11-21T06:00:00.000Z',\n"
        "   '2026-11-21T06:00:00.000Z', 0, 4, NULL, '2026-11-21T06:00:01.000Z'),\n"
        "  (1, 'dock1', 'zebra', 'reprint', 'cancelled', '2026-11-21T06:01:00.000Z',\n"
        "   '2026-11-21T06:01:00.000Z', 1, NULL, 'job 5 cancelled', '2026-11-21T06:01:09.000Z'),\n"
        "  (1, 'dock1', 'zebra', 'reprint', 'submitted', '2026-11-21T06:02:00.000Z',\n"
        "   '2026-11-21T06:02:00.000Z', 0, 6, NULL, NULL),\n"
        "  (1, 'dock1', 'zebra', 'reprint', 'queued', '2026-11-21T06:03:00.000Z',\n"
        "   '2026-11-21T06:03:30.000Z', 2, NULL, 'stopped', NULL);\n",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);

    db_t *db = NULL;
    char *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &msg), 0);
    free(msg);
    db_print_job_t j;
    static const db_print_state_t want[] = { DB_PRINT_PRINTED, DB_PRINT_FAILED,
                                             DB_PRINT_SUBMITTED, DB_PRINT_QUEUED };
    for (int id = 1; id <= 4; id++) {
        CU_ASSERT_EQUAL_FATAL(db_print_get(db, id, &j), 0);
        CU_ASSERT_EQUAL(j.state, want[id - 1]);
        CU_ASSERT_PTR_NULL(j.job_name);
        db_print_job_clear(&j);
    }
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, 3, &j), 0);
    CU_ASSERT_EQUAL(j.cups_job, 6);
    db_print_job_clear(&j);
    CU_ASSERT_EQUAL_FATAL(db_print_get(db, 4, &j), 0);
    CU_ASSERT_EQUAL(j.attempts, 2);
    ASSERT_STR(j.last_error, "stopped");
    db_print_job_clear(&j);
    CU_ASSERT_EQUAL(db_print_retry(db, 2, "again"), -EPERM);
    CU_ASSERT_EQUAL(db_print_printed(db, 3, 20000), 0);
    db_close(&db);
}

static int search_ids(const db_receipt_t *r, void *data)
{
    char *buf = data;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s%lld", n ? "," : "", (long long)r->id);
    return 0;
}

static int count_event(const db_event_t *ev, void *data)
{
    (void)ev;
    (*(int *)data)++;
    return 0;
}

/* The supervisor's search: each filter, prefixes, LIKE metacharacters, paging. */
static void test_receipt_search(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);
    static const struct {
        const char *station, *rma, *serial;
        db_receipt_state_t state;
        const char *disposition;
        int64_t at;
    } rows[] = {
        { "dock1", "RMA-0001", "SN-1", DB_RECEIPT_COMPLETED, "restock", 1790000000000 },
        { "dock1", "RMA-0002", "SN_2", DB_RECEIPT_REFUSED, NULL, 1790086400000 },
        { "dock2", "RMA-1003", "SN-3", DB_RECEIPT_COMPLETED, "quarantine", 1790172800000 },
        { "dock2", NULL, "X%4", DB_RECEIPT_OPEN, NULL, 1790259200000 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        db_receipt_t r = { .station = (char *)rows[i].station, .rma = (char *)rows[i].rma,
                           .serial = (char *)rows[i].serial, .state = rows[i].state,
                           .opened_at = rows[i].at, .closed_at = rows[i].at + 1000,
                           .disposition = (char *)rows[i].disposition,
                           .reason = rows[i].state == DB_RECEIPT_REFUSED ? "unknown RMA" : NULL };
        CU_ASSERT_EQUAL(db_receipt_insert(db, &r, NULL), 0);
    }
    char ids[256];
    uint64_t total = 99;
#define SEARCH(want, wtotal, limit, offset, ...)                                            \
    do {                                                                                   \
        db_receipt_filter_t f = { __VA_ARGS__ };                                           \
        ids[0] = '\0';                                                                     \
        CU_ASSERT_EQUAL(db_receipt_search(db, &f, limit, offset, search_ids, ids, &total), 0); \
        ASSERT_STR(ids, want);                                                             \
        CU_ASSERT_EQUAL(total, wtotal);                                                    \
    } while (0)
    SEARCH("4,3,2,1", 4, 10, 0, .rma = NULL);
    SEARCH("2,1", 2, 10, 0, .rma = "rma-000");               /* prefix, any case */
    SEARCH("2", 1, 10, 0, .serial = "SN_");                  /* _ is a character, not a joker */
    SEARCH("4", 1, 10, 0, .serial = "X%");
    SEARCH("", 0, 10, 0, .serial = "%");
    SEARCH("4,3", 2, 10, 0, .station = "dock2");
    SEARCH("3,1", 2, 10, 0, .state = "completed");
    SEARCH("3", 1, 10, 0, .disposition = "quarantine");
    SEARCH("3,2", 2, 10, 0, .from_ms = 1790086400000, .to_ms = 1790259200000);
    SEARCH("3,2", 4, 2, 1, .rma = NULL);                     /* page 2 of 2-per-page... */
    SEARCH("", 0, 2, 10, .rma = NULL);                       /* past the end */
#undef SEARCH
    db_receipt_filter_t none = { 0 };
    CU_ASSERT_EQUAL(db_receipt_search(db, &none, 0, 0, search_ids, ids, NULL), -EINVAL);
    CU_ASSERT_EQUAL(db_receipt_search(db, &none, 1001, 0, search_ids, ids, NULL), -EINVAL);

    /* Events of one receipt, by the envelope's receipt. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 1, "a.b", "{\"seq\":1,\"type\":\"a.b\",\"receipt\":2}"), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 2, "a.b", "{\"seq\":2,\"type\":\"a.b\",\"receipt\":3}"), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 3, "a.b", "{\"seq\":3,\"type\":\"a.b\",\"receipt\":2}"), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    int n = 0;
    CU_ASSERT_EQUAL(db_outbox_foreach_receipt(db, 2, 0, count_event, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    n = 0;
    CU_ASSERT_EQUAL(db_outbox_foreach_receipt(db, 2, 1, count_event, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    n = 0;
    CU_ASSERT_EQUAL(db_outbox_foreach_receipt(db, 9, 0, count_event, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    db_close(&db);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[8192];
    size_t n;
    int r = in && out ? 0 : -1;

    while (r == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            r = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        r = -1;
    return r;
}

/* Every row of receipts and scans, every column, in id order, as one text. */
static char *dump_rows(const char *path)
{
    static const char *const sql =
        "SELECT group_concat(x, char(10)) FROM ("
        " SELECT 'r' || quote(id) || quote(station) || quote(rma) || quote(state)"
        "  || quote(opened_at) || quote(closed_at) || quote(serial) || quote(checklist)"
        "  || quote(result) || quote(disposition) || quote(reason) || quote(line)"
        "  || quote(policy_sha256) || quote(policy_version) AS x FROM receipts"
        " UNION ALL"
        " SELECT 's' || quote(id) || quote(at) || quote(station) || quote(scanner)"
        "  || quote(symbology) || quote(raw) || quote(text) || quote(kind) || quote(accepted)"
        "  || quote(reason) || quote(receipt_id) FROM scans"
        " UNION ALL SELECT 'p' || quote(id) || quote(receipt_id) FROM print_jobs"
        " UNION ALL SELECT 'o' || quote(seq) || quote(body) FROM outbox)";
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    char *out = NULL;

    if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(s, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW
        && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(s);
    return out;
}

/*
 * Issue 17: a copy of a schema-6 database (AUTOINCREMENT on receipts and scans) opens
 * as the current schema (8 rebuilt the tables) with every row kept byte for byte,
 * ids included; the audit rules hold
 * (closed receipts final, nothing deleted outside retention's gate, the newest scan
 * kept); new rows take max(id) + 1; sqlite_sequence is no longer written.
 */
static void test_autoincrement_migration(void)
{
    db_t *gone = fresh();
    db_close(&gone);
    (void)remove(th_tmpdb_path());
    char old[4200];
    snprintf(old, sizeof(old), "%s.schema6", th_tmpdb_path());
    (void)remove(old);
    sqlite3 *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(old, &raw), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(raw, "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL", NULL, NULL, &err);
    for (int i = 0; i < 6 && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(raw, db_migrations[i], NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(raw,
            "PRAGMA user_version = 6;\n"
            "INSERT INTO rmas (number, issued, kind, vendor) VALUES\n"
            "  ('RMA-1', '2026-11-01', 'warranty', 'V7');\n"
            "INSERT INTO rma_lines (rma, line, model, quantity) VALUES ('RMA-1', 1, 'SSD', 2);\n"
            "INSERT INTO receipts (station, rma, state, opened_at, closed_at, serial, checklist,\n"
            "                      result, disposition, reason, line, policy_sha256, policy_version)\n"
            "VALUES ('dock1', 'RMA-1', 'completed', '2026-11-21T06:00:00.000Z',\n"
            "        '2026-11-21T06:05:00.000Z', 'SN-1', '{\"a\":1}', '{\"d\":\"x\"}', 'return_to_stock',\n"
            "        NULL, 1, '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'v3'),\n"
            "       ('dock1', 'RMA-NOPE', 'refused', '2026-11-21T06:10:00.000Z',\n"
            "        '2026-11-21T06:10:00.000Z', NULL, NULL, NULL, NULL, 'unknown RMA', NULL, NULL, NULL),\n"
            "       ('dock2', NULL, 'cancelled', '2026-11-21T06:11:00.000Z',\n"
            "        '2026-11-21T06:12:00.000Z', NULL, NULL, NULL, NULL, 'wrong box', NULL, NULL, NULL),\n"
            "       ('dock1', 'RMA-1', 'open', '2026-11-21T06:20:00.000Z', NULL, 'SN-2',\n"
            "        '{\"b\":2}', NULL, NULL, NULL, 1, NULL, NULL);\n"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)\n"
            "INSERT INTO scans (at, station, scanner, symbology, raw, text, kind, accepted, reason,\n"
            "                   receipt_id)\n"
            "SELECT printf('2026-11-21T06:%02d:%02d.000Z', i / 60 % 60, i % 60), 'dock' || (i % 2 + 1),\n"
            "       'tcp:127.0.0.1:1#' || i, CASE WHEN i % 3 = 0 THEN ']C1' END,\n"
            "       CASE WHEN i % 11 = 0 THEN x'00ff' ELSE CAST(printf('X%d', i) AS BLOB) END, printf('X%d', i),\n"
            "       CASE WHEN i % 7 = 0 THEN 'invalid' ELSE 'rma' END, i % 7 <> 0,\n"
            "       CASE WHEN i % 7 = 0 THEN 'not a barcode' END, CASE WHEN i % 5 <> 0 THEN i % 4 + 1 END\n"
            "FROM n;\n"
            "INSERT INTO print_jobs (receipt_id, station, printer, why, created_at)\n"
            "  VALUES (1, 'dock1', 'zebra', 'disposition', '2026-11-21T06:05:00.000Z');\n"
            "INSERT INTO outbox (seq, topic, body) VALUES (1, 't', '{\"seq\":1,\"type\":\"t\"}');\n",
            NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  schema 6: %s\n", err);
    sqlite3_free(err);
    sqlite3_close(raw);
    CU_ASSERT_EQUAL_FATAL(rc, SQLITE_OK);

    char *before = dump_rows(old);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    /* A copy, as an operator's upgrade would find it (the old file stays as it was). */
    CU_ASSERT_EQUAL_FATAL(copy_file(old, th_tmpdb_path()), 0);

    db_t *db = NULL;
    char *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &msg), 0);
    free(msg);
    CU_ASSERT_EQUAL(peek_int("PRAGMA user_version"), db_schema_version());
    char *after = dump_rows(th_tmpdb_path());
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(after, before);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM scans"), 500);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM receipts"), 4);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM sqlite_master WHERE sql LIKE '%AUTOINCREMENT%'"), 0);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM sqlite_sequence"), 0);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                             " AND tbl_name IN ('receipts', 'scans')"), 7);
    CU_ASSERT_EQUAL(peek_int("PRAGMA foreign_keys"), 0);   /* a fresh connection's default */
    free(before);
    free(after);

    /* The audit rules, as before. */
    CU_ASSERT_EQUAL(poke("UPDATE receipts SET reason = 'x' WHERE id = 1"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("UPDATE receipts SET station = 'x' WHERE id = 4"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM receipts WHERE id = 2"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("UPDATE scans SET text = 'x' WHERE id = 1"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM scans WHERE id = 1"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("INSERT INTO receipts (station, state, opened_at) VALUES ('d', 'open', 'x');"
                         "INSERT INTO receipts (station, state, opened_at) VALUES ('d', 'open', 'y')"),
                    SQLITE_CONSTRAINT);   /* one open receipt per station */
    /* Foreign keys are on again for the daemon's connection. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    db_scan_t bad = { .at = 1, .station = "dock1", .scanner = "t", .raw = "Z", .raw_len = 1,
                      .text = "Z", .kind = "rma", .accepted = true, .receipt_id = 99 };
    CU_ASSERT(db_scan_insert(db, &bad, NULL) < 0);
    db_scan_t ok = bad;
    ok.receipt_id = 4;
    int64_t id = 0;
    CU_ASSERT_EQUAL(db_scan_insert(db, &ok, &id), 0);
    CU_ASSERT_EQUAL(id, 501);
    CU_ASSERT_EQUAL(db_commit(db), 0);

    /* Retention through the gate: all the old scans but those of the open receipt
     * (4) and the newest, from which the ids go on. */
    db_retention_t got = { 0 };
    CU_ASSERT_EQUAL(poke("UPDATE receipts SET state = 'cancelled', closed_at = 'z', reason = 'r'"
                         " WHERE id = 4"), SQLITE_OK);
    CU_ASSERT_EQUAL(db_retention_batch(db, loop_wall_ms(), UINT64_MAX, 10000, &got), 0);
    CU_ASSERT_EQUAL(got.scans, 500);
    CU_ASSERT_EQUAL(peek_int("SELECT id FROM scans"), 501);
    CU_ASSERT_EQUAL(poke("BEGIN; INSERT INTO retention_gate VALUES (1, '9999-01-01T00:00:00.000Z');"
                         " DELETE FROM scans WHERE id = 501; COMMIT"), SQLITE_CONSTRAINT);
    (void)poke("ROLLBACK");
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_scan_insert(db, &bad, &id), -ENOENT);
    bad.receipt_id = 0;
    CU_ASSERT_EQUAL(db_scan_insert(db, &bad, &id), 0);
    CU_ASSERT_EQUAL(id, 502);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    db_close(&db);
    (void)remove(old);
}

/*
 * A database of schema 3 (one unit per RMA) opens as schema 4 with each RMA as one
 * line of quantity 1: its product facts and expected serial on the line, its
 * receipts units of line 1, a received RMA still received.
 */
static void test_rma_lines_migration(void)
{
    db_t *gone = fresh();
    db_close(&gone);
    (void)remove(th_tmpdb_path());
    sqlite3 *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(th_tmpdb_path(), &raw), SQLITE_OK);
    char *err = NULL;
    int rc = SQLITE_OK;
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(raw, db_migrations[i], NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  migration: %s\n", err);
    sqlite3_free(err);
    CU_ASSERT_EQUAL_FATAL(rc, SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(raw,
        "PRAGMA user_version = 3;\n"
        "INSERT INTO rmas (number, issued, kind, vendor, model, family, expected_serial,\n"
        "                  purchased, warranty_months, has_storage_media, status) VALUES\n"
        "  ('RMA-3001', '2026-11-01', 'warranty', 'V7', 'SSD-512', 'Solid State Drives',\n"
        "   'SN-77', '2025-06-01', 36, 1, 'received'),\n"
        "  ('RMA-3002', '2026-11-02', NULL, 'QCT', NULL, NULL, NULL, NULL, NULL, NULL, 'open');\n"
        "INSERT INTO receipts (id, station, rma, state, opened_at, closed_at, serial, disposition)\n"
        "  VALUES (1, 'dock1', 'RMA-3001', 'completed', '2026-11-21T06:00:00.000Z',\n"
        "          '2026-11-21T06:05:00.000Z', 'SN-77', 'warranty_exchange'),\n"
        "         (2, 'dock1', 'RMA-NOPE', 'refused', '2026-11-21T06:10:00.000Z',\n"
        "          '2026-11-21T06:10:00.000Z', NULL, NULL);\n",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);

    db_t *db = NULL;
    char *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &msg), 0);
    free(msg);
    CU_ASSERT_EQUAL(peek_int("PRAGMA user_version"), db_schema_version());
    db_rma_t r;
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-3001", &r), 0);
    CU_ASSERT_EQUAL(r.lines, 1);
    CU_ASSERT_EQUAL(r.line, 1);
    CU_ASSERT_EQUAL(r.quantity, 1);
    ASSERT_STR(r.model, "SSD-512");
    ASSERT_STR(r.family, "Solid State Drives");
    ASSERT_STR(r.expected_serial, "SN-77");
    ASSERT_STR(r.expected_serials, "SN-77");
    CU_ASSERT_EQUAL(r.purchased, caldate_from_ymd(2025, 6, 1));
    CU_ASSERT_EQUAL(r.warranty_months, 36);
    CU_ASSERT_EQUAL(r.has_storage_media, 1);
    CU_ASSERT_EQUAL(r.status, DB_RMA_RECEIVED);
    CU_ASSERT_EQUAL(r.authorised, 1);
    CU_ASSERT_EQUAL(r.received, 1);
    CU_ASSERT_EQUAL(r.line_received, 1);
    int line = 0;
    CU_ASSERT_EQUAL(db_rma_serial_line(db, "RMA-3001", " sn-77 ", &line), 0);
    CU_ASSERT_EQUAL(line, 1);
    int64_t rid = 0;
    CU_ASSERT_EQUAL(db_rma_serial_received(db, "RMA-3001", "sn-77", &rid), 0);
    CU_ASSERT_EQUAL(rid, 1);

    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-3002", &r), 0);
    CU_ASSERT_EQUAL(r.lines, 1);
    CU_ASSERT_EQUAL(r.quantity, 1);
    ASSERT_STR(r.expected_serial, "");
    CU_ASSERT_EQUAL(r.status, DB_RMA_OPEN);
    CU_ASSERT_EQUAL(db_rma_serial_line(db, "RMA-3002", "SN-77", &line), -ENOENT);

    db_receipt_t rc1;
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, 1, &rc1), 0);
    CU_ASSERT_EQUAL(rc1.line, 1);
    db_receipt_clear(&rc1);
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, 2, &rc1), 0);
    CU_ASSERT_EQUAL(rc1.line, 0);      /* a refusal is no unit of any line */
    db_receipt_clear(&rc1);
    /* The backfill did not lift the audit rule for good. */
    CU_ASSERT_NOT_EQUAL(poke("UPDATE receipts SET serial = 'X' WHERE id = 1"), SQLITE_OK);
    db_close(&db);
}

static int collect_receipt_ids(const db_receipt_t *r, void *data)
{
    char *s = data;
    size_t l = strlen(s);
    snprintf(s + l, 64 - l, "%s%lld", l ? "," : "", (long long)r->id);
    return 0;
}

/*
 * Issue 13: a database of schema 4 (a copy as an older rmad left it) opens with the
 * receipts' policy hash and version columns: its receipts read back with neither,
 * new ones keep both, and rmactl receipts --policy-version finds them by version.
 */
static void test_policy_version_migration(void)
{
    db_t *gone = fresh();
    db_close(&gone);
    (void)remove(th_tmpdb_path());
    sqlite3 *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(th_tmpdb_path(), &raw), SQLITE_OK);
    char *err = NULL;
    int rc = SQLITE_OK;
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(raw, db_migrations[i], NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "\n  migration: %s\n", err);
    sqlite3_free(err);
    CU_ASSERT_EQUAL_FATAL(rc, SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(raw,
        "PRAGMA user_version = 4;\n"
        "INSERT INTO receipts (id, station, rma, state, opened_at, closed_at, serial, disposition)\n"
        "  VALUES (1, 'dock1', 'RMA-4001', 'completed', '2026-11-21T06:00:00.000Z',\n"
        "          '2026-11-21T06:05:00.000Z', 'SN-77', 'warranty_exchange');\n",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);

    db_t *db = NULL;
    char *msg = NULL;
    CU_ASSERT_EQUAL_FATAL(db_open(th_tmpdb_path(), &db, &msg), 0);
    free(msg);
    CU_ASSERT_EQUAL(peek_int("PRAGMA user_version"), db_schema_version());
    db_receipt_t old;
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, 1, &old), 0);
    CU_ASSERT_PTR_NULL(old.policy_sha256);
    CU_ASSERT_PTR_NULL(old.policy_version);
    ASSERT_STR(old.disposition, "warranty_exchange");
    db_receipt_clear(&old);

    static const char sha[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    db_receipt_t r = { .station = "dock1", .rma = "RMA-4002", .state = DB_RECEIPT_COMPLETED,
                       .opened_at = 1790000100000, .closed_at = 1790000200000,
                       .disposition = "restock", .policy_sha256 = (char *)sha,
                       .policy_version = "2026-03" };
    int64_t id2 = 0, id3 = 0;
    CU_ASSERT_EQUAL(db_receipt_insert(db, &r, &id2), 0);
    r.policy_version = "2026-04";
    r.opened_at += 1000;
    CU_ASSERT_EQUAL(db_receipt_insert(db, &r, &id3), 0);
    db_receipt_t back;
    CU_ASSERT_EQUAL_FATAL(db_receipt_get(db, id2, &back), 0);
    ASSERT_STR(back.policy_sha256, sha);
    ASSERT_STR(back.policy_version, "2026-03");
    db_receipt_clear(&back);

    char ids[64] = "";
    CU_ASSERT_EQUAL(db_receipt_list_by_policy_version(db, "2026-03", 0, collect_receipt_ids, ids), 0);
    CU_ASSERT_EQUAL(id2, 2);
    ASSERT_STR(ids, "2");
    ids[0] = '\0';
    CU_ASSERT_EQUAL(db_receipt_list_by_policy_version(db, "2026", 0, collect_receipt_ids, ids), 0);
    ASSERT_STR(ids, "");           /* exact, not a prefix */
    ids[0] = '\0';
    db_receipt_filter_t f = { .policy_version = "2026-04" };
    CU_ASSERT_EQUAL(db_receipt_search(db, &f, 10, 0, collect_receipt_ids, ids, NULL), 0);
    ASSERT_STR(ids, "3");
    /* The schema keeps a hash a hash. */
    r.policy_sha256 = "not-a-hash";
    CU_ASSERT_NOT_EQUAL(db_receipt_insert(db, &r, NULL), 0);
    db_close(&db);
}

#define LINES_CSV                                                                        \
    "number,issued,vendor,kind,line,model,family,quantity,expected_serials\n"             \
    "RMA-4001,2026-11-20,EverFocus,warranty,1,EZN268,IP Cameras,3,CAM-1|cam-2 | CAM-3\n"  \
    "RMA-4001,2026-11-20,EverFocus,warranty,2,ENVR8304D,NVR,1,\n"                         \
    "RMA-4002,2026-11-20,QCT,,,QuantaGrid,Servers,,\n"

static int collect_line(const db_rma_t *r, void *data)
{
    char *out = data;
    size_t len = strlen(out);
    snprintf(out + len, 1024 - len, "%d:%s:%d:%s:%d;", r->line, r->model, r->quantity,
             r->expected_serials, r->line_received);
    return 0;
}

static void test_import_lines(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    char *msg = NULL, got[1024] = "";
    db_rma_t r;
    CU_ASSERT_FATAL(db != NULL);

    CU_ASSERT_EQUAL(import(db, LINES_CSV, &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.rows, 3);
    CU_ASSERT_EQUAL(rep.inserted, 2);   /* per RMA, not per row */
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(db_rma_foreach_line(db, "RMA-4001", collect_line, got), 0);
    ASSERT_STR(got, "1:EZN268:3:CAM-1|cam-2|CAM-3:0;2:ENVR8304D:1::0;");
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-4001", &r), 0);
    CU_ASSERT_EQUAL(r.lines, 2);
    CU_ASSERT_EQUAL(r.authorised, 4);
    ASSERT_STR(r.expected_serial, "");   /* several: no single expected serial */
    CU_ASSERT_EQUAL_FATAL(db_rma_get_line(db, "RMA-4001", 2, &r), 0);
    ASSERT_STR(r.model, "ENVR8304D");
    ASSERT_STR(r.vendor, "EverFocus");
    CU_ASSERT_EQUAL(db_rma_get_line(db, "RMA-4001", 3, &r), -ENOENT);
    int line = 0;
    CU_ASSERT_EQUAL(db_rma_serial_line(db, "RMA-4001", "CAM-2", &line), 0);
    CU_ASSERT_EQUAL(line, 1);
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-4002", &r), 0);
    CU_ASSERT_EQUAL(r.line, 1);
    CU_ASSERT_EQUAL(r.quantity, 1);    /* quantity defaults to 1 */

    /* Idempotent. */
    CU_ASSERT_EQUAL(import(db, LINES_CSV, &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.unchanged, 2);
    db_import_report_clear(&rep);

    /* Lines numbered by their order when the column is absent; a line that goes is
     * deleted, a serial may move between lines. */
    CU_ASSERT_EQUAL(import(db,
        "number,issued,vendor,kind,model,quantity,expected_serials\n"
        "RMA-4001,2026-11-20,EverFocus,warranty,ENVR8304D,2,CAM-3\n"
        "RMA-4001,2026-11-20,EverFocus,warranty,EZN268,2,CAM-1|CAM-2\n", &rep, &msg), 0);
    CU_ASSERT_EQUAL(rep.updated, 1);
    db_import_report_clear(&rep);
    got[0] = '\0';
    CU_ASSERT_EQUAL(db_rma_foreach_line(db, "RMA-4001", collect_line, got), 0);
    ASSERT_STR(got, "1:ENVR8304D:2:CAM-3:0;2:EZN268:2:CAM-1|CAM-2:0;");
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rma_serials WHERE rma = 'RMA-4001'"), 3);

    /* Closing: a reason, once; not an unknown one. */
    CU_ASSERT_EQUAL(db_rma_close(db, "RMA-4002", "customer kept the unit", 1000), 0);
    CU_ASSERT_EQUAL(db_rma_close(db, "RMA-4002", "again", 2000), -EALREADY);
    CU_ASSERT_EQUAL(db_rma_close(db, "RMA-NOPE", "x", 2000), -ENOENT);
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-4002", &r), 0);
    CU_ASSERT_EQUAL(r.status, DB_RMA_CLOSED);
    char *why = NULL;
    int64_t at = 0;
    CU_ASSERT_EQUAL(db_rma_closed(db, "RMA-4002", &why, &at), 0);
    ASSERT_STR(why, "customer kept the unit");
    CU_ASSERT_EQUAL(at, 1000);
    free(why);
    CU_ASSERT_EQUAL(db_rma_closed(db, "RMA-4001", &why, &at), -ENOENT);
    db_close(&db);
}

/* A unit received on a line, as the station stores it. */
static void receive_unit(db_t *db, const char *rma, int line, const char *serial)
{
    db_receipt_t rc = { .station = "dock1", .rma = (char *)rma, .line = line,
                        .state = DB_RECEIPT_COMPLETED, .opened_at = 1000, .closed_at = 2000,
                        .serial = (char *)serial, .disposition = "warranty_exchange" };
    CU_ASSERT_EQUAL(db_receipt_insert(db, &rc, NULL), 0);
}

static void test_import_lines_bad_rows(void)
{
    db_t *db = fresh();
    db_import_report_t rep;
    char *msg = NULL;
    CU_ASSERT_FATAL(db != NULL);

    const char *csv =
        "number,issued,vendor,line,model,quantity,expected_serials,expected_serial\n" /* 1 */
        "RMA-5001,2026-11-20,QCT,1,Board,2,B-1|B-2|B-3,\n"       /* 2: 3 serials, quantity 2 */
        "RMA-5002,2026-11-20,QCT,1,Board,3,B-1|b-1,\n"           /* 3: twice in the row */
        "RMA-5003,2026-11-20,QCT,1,Board,3,C-1|C-2,\n"           /* 4 good */
        "RMA-5003,2026-11-20,QCT,2,Bracket,3,C-2,\n"             /* 5: C-2 also on line 4 */
        "RMA-5004,2026-11-20,QCT,1,Board,1,,\n"                  /* 6 good */
        "RMA-5004,2026-11-20,QCT,1,Cable,1,,\n"                  /* 7: line 1 again */
        "RMA-5005,2026-11-20,QCT,0,Board,0,D-1||D-2,\n"          /* 8: line, quantity, empty */
        "RMA-5006,2026-11-20,QCT,1,Board,2,E-1,E-1\n"            /* 9: both serial columns */
        "RMA-5007,2026-11-20,V7,1,Board,1,,\n"                   /* 10 good */
        "RMA-5007,2026-11-21,V7,2,Board,1,,\n";                  /* 11: issued differs */
    static const char *const want[] = {
        "line 2: expected_serials: 3 serials listed for a quantity of 2",
        "line 3: expected_serials: serial \"B-1\" listed twice",
        "line 5: expected_serials: serial \"C-2\" of RMA-5003 is already listed on line 4",
        "line 7: line: RMA-5004 line 1 is already on line 6",
        "line 8: line: expected a line number 1..9999, got \"0\"",
        "line 8: quantity: expected a quantity 1..10000, got \"0\"",
        "line 8: expected_serials: empty serial in the list (a '|' too many)",
        "line 9: expected_serials: give expected_serial or expected_serials, not both",
        "line 11: issued: differs from line 10, the first row of RMA-5007 (an RMA's issued is "
        "the same on all its lines)",
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    CU_ASSERT_EQUAL(import(db, csv, &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL(rep.errors_total, nwant);
    for (size_t i = 0; i < nwant && i < rep.nerrors; i++)
        ASSERT_STR(rep.errors[i], want[i]);
    for (size_t i = nwant; i < rep.nerrors; i++)
        fprintf(stderr, "\n  extra: %s", rep.errors[i]);
    free(msg);
    db_import_report_clear(&rep);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM rmas"), 0);

    /* Re-importing with fewer lines, or fewer units, than already received. */
    CU_ASSERT_EQUAL(import(db, LINES_CSV, &rep, &msg), 0);
    db_import_report_clear(&rep);
    receive_unit(db, "RMA-4001", 1, "CAM-1");
    receive_unit(db, "RMA-4001", 1, "CAM-2");
    receive_unit(db, "RMA-4001", 2, "NVR-9");
    CU_ASSERT_EQUAL(import(db,
        "number,issued,vendor,kind,line,model,quantity\n"
        "RMA-4001,2026-11-20,EverFocus,warranty,1,EZN268,1\n", &rep, &msg), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(rep.nerrors, 2);
    ASSERT_STR(rep.errors[0], "line 2: quantity: 1 is fewer than the 2 units of RMA-4001 line 1 "
               "already received");
    ASSERT_STR(rep.errors[1], "line 2: RMA-4001: line 2 has 1 unit received and is not in the "
               "file (an RMA cannot lose lines that units came in on)");
    free(msg);
    db_import_report_clear(&rep);
    db_rma_t r;
    CU_ASSERT_EQUAL_FATAL(db_rma_get(db, "RMA-4001", &r), 0);
    CU_ASSERT_EQUAL(r.lines, 2);
    CU_ASSERT_EQUAL(r.received, 3);
    CU_ASSERT_EQUAL(r.status, DB_RMA_PARTIAL);
    db_close(&db);
}

/* Where a database can live, in words: the causes SQLite reports as "unable to open". */
static void test_check_location(void)
{
    char *err = NULL, path[4200];
    CU_ASSERT_EQUAL(db_check_location(th_tmpdb_path(), &err), 0);
    CU_ASSERT_PTR_NULL(err);

    snprintf(path, sizeof(path), "%s/no/such/dir/rmad.db", th_tmpdb_dir());
    CU_ASSERT_EQUAL(db_check_location(path, &err), -ENOENT);
    ASSERT_CONTAINS(err, "no/such/dir: no such directory");
    free(err);

    /* A file where the directory should be. */
    snprintf(path, sizeof(path), "%s/plain", th_tmpdb_dir());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/plain/rmad.db", th_tmpdb_dir());
    CU_ASSERT_EQUAL(db_check_location(path, &err), -ENOTDIR);
    ASSERT_CONTAINS(err, "plain: not a directory");
    free(err);

    /* A directory where the database file should be. */
    snprintf(path, sizeof(path), "%s", th_tmpdb_dir());
    CU_ASSERT_EQUAL(db_check_location(path, &err), -EINVAL);
    ASSERT_CONTAINS(err, "not a regular file");
    free(err);

    /* A read-only filesystem, where this machine lets us mount one (root in CI). */
    char ro[4000];
    snprintf(ro, sizeof(ro), "%s/ro", th_tmpdb_dir());
    CU_ASSERT_EQUAL_FATAL(mkdir(ro, 0755), 0);
    char *argv[] = { "/bin/mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", ro, NULL };
    th_proc_t pr;
    if (th_run(argv, NULL, &pr) == 0 && pr.status == 0) {
        snprintf(path, sizeof(path), "%s/rmad.db", ro);
        CU_ASSERT_EQUAL(db_check_location(path, &err), -EROFS);
        ASSERT_CONTAINS(err, "read-only filesystem");
        free(err);
        char *um[] = { "/bin/umount", ro, NULL };
        th_proc_t pu;
        if (th_run(um, NULL, &pu) == 0)
            th_proc_free(&pu);
    } else {
        fprintf(stderr, "\n  (read-only case skipped: cannot mount a tmpfs here)\n");
    }
    th_proc_free(&pr);
}

/* ------------------------------------------------------------- care ----------- */

/* Old history: receipt 1 completed, receipt 2 open; scans and events from 2020 and now. */
static const char OLD_HISTORY[] =
    "INSERT INTO receipts (id, station, rma, state, opened_at, closed_at, disposition)\n"
    "VALUES (1, 'dock1', 'RMA-1', 'completed', '2020-01-01T08:00:00.000Z',\n"
    "        '2020-01-01T08:05:00.000Z', 'return_to_stock'),\n"
    "       (2, 'dock2', 'RMA-2', 'open', '2020-01-02T08:00:00.000Z', NULL, NULL);\n"
    "INSERT INTO scans (at, station, scanner, raw, text, kind, accepted, receipt_id) VALUES\n"
    "  ('2020-01-01T08:00:00.000Z', 'dock1', 'tcp:x#1', x'41', 'A', 'rma', 1, 1),\n"
    "  ('2020-01-02T08:00:00.000Z', 'dock2', 'tcp:x#2', x'42', 'B', 'rma', 1, 2),\n"
    "  ('2020-01-03T08:00:00.000Z', 'dock1', 'tcp:x#1', x'43', 'C', 'unknown', 1, NULL),\n"
    "  (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'dock1', 'tcp:x#1', x'44', 'D', 'unknown', 1, NULL);\n"
    "INSERT INTO outbox (seq, topic, body, created_at) VALUES\n"
    "  (1, 't', '{\"seq\":1,\"type\":\"t\"}', '2020-01-01T08:00:00.000Z'),\n"
    "  (2, 't', '{\"seq\":2,\"type\":\"t\"}', '2020-01-01T08:00:01.000Z'),\n"
    "  (3, 't', '{\"seq\":3,\"type\":\"t\"}', '2020-01-01T08:00:02.000Z'),\n"
    "  (4, 't', '{\"seq\":4,\"type\":\"t\"}', '2020-01-01T08:00:03.000Z');\n";

#define DAY_MS (24 * 3600 * 1000LL)

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Retention deletes old scans and events in bounded batches, and nothing else: not
 * receipts, not a scan of an open receipt, not the newest event, not events after a
 * configured subscriber's acknowledgement. Outside a pass the no-delete rules hold.
 */
static void test_retention(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL_FATAL(poke(OLD_HISTORY), SQLITE_OK);
    CU_ASSERT_EQUAL(poke("DELETE FROM scans WHERE id = 1"), SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(poke("DELETE FROM outbox WHERE seq = 1"), SQLITE_CONSTRAINT);
    /* The gate opens only for rows older than its cutoff. */
    CU_ASSERT_EQUAL(poke("BEGIN; INSERT INTO retention_gate VALUES (1, '2019-01-01T00:00:00.000Z');"
                         " DELETE FROM scans WHERE id = 1; COMMIT"), SQLITE_CONSTRAINT);
    (void)poke("ROLLBACK");

    int64_t cutoff = wall_ms() - 30 * DAY_MS;
    db_retention_t got = { 9, 9 };
    /* A subscriber acknowledged up to 2: events 3 and 4 stay for it. */
    CU_ASSERT_EQUAL(db_retention_batch(db, cutoff, 3, 2, &got), 0);
    CU_ASSERT_EQUAL(got.scans, 2);            /* of 3 old ones: receipt 2 is open */
    CU_ASSERT_EQUAL(got.events, 2);
    CU_ASSERT_EQUAL(db_retention_batch(db, cutoff, 3, 2, &got), 0);
    CU_ASSERT_EQUAL(got.scans, 0);
    CU_ASSERT_EQUAL(got.events, 0);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM scans WHERE receipt_id = 2"), 1);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM scans WHERE text = 'D'"), 1);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM receipts"), 2);
    CU_ASSERT_EQUAL(peek_int("SELECT min(seq) FROM outbox"), 3);
    /* No subscriber holds them: everything old goes but the newest event. */
    CU_ASSERT_EQUAL(db_retention_batch(db, cutoff, UINT64_MAX, DB_RETENTION_BATCH, &got), 0);
    CU_ASSERT_EQUAL(got.events, 1);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM outbox"), 1);
    CU_ASSERT_EQUAL(peek_int("SELECT seq FROM outbox"), 4);
    CU_ASSERT_EQUAL(peek_int("SELECT count(*) FROM retention_gate"), 0);
    CU_ASSERT_EQUAL(poke("DELETE FROM outbox"), SQLITE_CONSTRAINT);
    /* The seq goes on from the newest, without a gap. */
    uint64_t seq = 0;
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_next_seq(db, &seq), 0);
    CU_ASSERT_EQUAL(seq, 5);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 5, "t", "{\"seq\":5,\"type\":\"t\"}"), 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    /* 4 is no longer the newest: it goes; then nothing old is left. */
    CU_ASSERT_EQUAL(db_retention_batch(db, cutoff, UINT64_MAX, DB_RETENTION_BATCH, &got), 0);
    CU_ASSERT(got.scans == 0 && got.events == 1);
    CU_ASSERT_EQUAL(db_retention_batch(db, cutoff, UINT64_MAX, DB_RETENTION_BATCH, &got), 0);
    CU_ASSERT(got.scans == 0 && got.events == 0);
    CU_ASSERT_EQUAL(peek_int("SELECT min(seq) FROM outbox"), 5);
    /* Inside a transaction it refuses (the daemon's loop never nests). */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT(db_retention_batch(db, cutoff, UINT64_MAX, 10, &got) < 0);
    CU_ASSERT_EQUAL(db_rollback(db), 0);

    /* Acknowledgements: stored, never back, never past the last event. */
    uint64_t acked = 99;
    CU_ASSERT_EQUAL(db_subscriber_acked(db, "erp", &acked), 0);
    CU_ASSERT_EQUAL(acked, 0);
    CU_ASSERT_EQUAL(db_subscriber_ack(db, "erp", 4, 0), 0);
    CU_ASSERT_EQUAL(db_subscriber_ack(db, "erp", 2, 0), 0);
    CU_ASSERT_EQUAL(db_subscriber_acked(db, "erp", &acked), 0);
    CU_ASSERT_EQUAL(acked, 4);
    CU_ASSERT_EQUAL(db_subscriber_ack(db, "erp", 6, 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(db_errmsg(db), "past the last event (5)"));
    db_close(&db);
}

/* A backup while another connection holds a write transaction; integrity checks. */
static void test_backup_and_integrity(void)
{
    db_t *db = fresh();
    CU_ASSERT_FATAL(db != NULL);
    CU_ASSERT_EQUAL_FATAL(poke(OLD_HISTORY), SQLITE_OK);
    char dest[4200], junk[4200];
    snprintf(dest, sizeof(dest), "%s.backup", th_tmpdb_path());
    snprintf(junk, sizeof(junk), "%s.junk", th_tmpdb_path());
    (void)remove(dest);

    /* Uncommitted work is not in the copy; what was committed is. */
    CU_ASSERT_EQUAL(db_begin(db), 0);
    CU_ASSERT_EQUAL(db_outbox_insert(db, 5, "t", "{\"seq\":5,\"type\":\"t\"}"), 0);
    char *err = NULL;
    int pages = 0;
    CU_ASSERT_EQUAL(db_backup_file(th_tmpdb_path(), dest, &pages, &err), 0);
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT(pages > 0);
    CU_ASSERT_EQUAL(db_commit(db), 0);
    sqlite3 *b = NULL;
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(dest, &b, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_prepare_v2(b, "SELECT (SELECT max(seq) FROM outbox), "
                                          "(SELECT count(*) FROM receipts), "
                                          "(SELECT count(*) FROM scans)", -1, &st, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_EQUAL(sqlite3_column_int(st, 0), 4);
    CU_ASSERT_EQUAL(sqlite3_column_int(st, 1), 2);
    CU_ASSERT_EQUAL(sqlite3_column_int(st, 2), 4);
    sqlite3_finalize(st);
    sqlite3_close(b);
    /* The copy stands alone: one file, nothing beside it. */
    char side[4300];
    snprintf(side, sizeof(side), "%s-wal", dest);
    CU_ASSERT_NOT_EQUAL(access(side, F_OK), 0);
    CU_ASSERT_EQUAL(db_integrity_check(dest, &err), 0);
    CU_ASSERT_PTR_NULL(err);
    CU_ASSERT_EQUAL(db_integrity_check(th_tmpdb_path(), &err), 0);
    free(err);

    /* A damaged copy: integrity_check says so, in its words. */
    FILE *f = fopen(dest, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(dest, &sb), 0);
    for (long off = 4096; off + 512 <= sb.st_size; off += 4096) {
        char garbage[512];
        memset(garbage, 0x5a, sizeof(garbage));
        CU_ASSERT_EQUAL(fseek(f, off + 100, SEEK_SET), 0);
        CU_ASSERT_EQUAL(fwrite(garbage, 1, sizeof(garbage), f), sizeof(garbage));
    }
    fclose(f);
    err = NULL;
    CU_ASSERT_EQUAL(db_integrity_check(dest, &err), -EBADMSG);
    CU_ASSERT_PTR_NOT_NULL(err);
    free(err);
    err = NULL;
    CU_ASSERT_EQUAL(db_integrity_check(junk, &err), -ENOENT);   /* never created */
    CU_ASSERT_NOT_EQUAL(access(junk, F_OK), 0);
    free(err);
    err = NULL;
    /* A destination that cannot be written leaves nothing behind. */
    CU_ASSERT(db_backup_file(th_tmpdb_path(), "/nonexistent-dir/x.db", &pages, &err) < 0);
    CU_ASSERT_PTR_NOT_NULL(err);
    free(err);
    (void)remove(dest);
    db_close(&db);
}

int suite_db(void)
{
    CU_pSuite s = CU_add_suite("db", th_tmpdb_setup, th_tmpdb_teardown);
    if (!s)
        return -1;
    if (!CU_add_test(s, "open migrates a fresh file, WAL", test_open_migrates_fresh_file)
        || !CU_add_test(s, "reopen is a no-op", test_reopen_is_noop)
        || !CU_add_test(s, "newer schema refused", test_newer_schema_refused)
        || !CU_add_test(s, "open errors", test_open_errors)
        || !CU_add_test(s, "transactions", test_transactions)
        || !CU_add_test(s, "rma fields and validate", test_rma_fields_and_validate)
        || !CU_add_test(s, "rma get, upsert, mark received", test_rma_get_and_mark_received)
        || !CU_add_test(s, "import happy path, idempotent", test_import_happy_and_idempotent)
        || !CU_add_test(s, "import bad rows apply nothing", test_import_bad_rows_apply_nothing)
        || !CU_add_test(s, "import header errors", test_import_header_errors)
        || !CU_add_test(s, "import caps", test_import_caps)
        || !CU_add_test(s, "receipt lifecycle", test_receipt_lifecycle)
        || !CU_add_test(s, "receipt search and events of a receipt", test_receipt_search)
        || !CU_add_test(s, "scans keep raw bytes", test_scans_raw_bytes)
        || !CU_add_test(s, "outbox gapless across restarts", test_outbox_gapless_across_restarts)
        || !CU_add_test(s, "outbox replay", test_outbox_replay)
        || !CU_add_test(s, "print queue", test_print_queue)
        || !CU_add_test(s, "print queue: schema 2 migrates", test_print_queue_migration)
        || !CU_add_test(s, "rma lines: schema 3 migrates", test_rma_lines_migration)
        || !CU_add_test(s, "schema 8: AUTOINCREMENT gone, every row kept", test_autoincrement_migration)
        || !CU_add_test(s, "receipts' policy version: schema 4 migrates", test_policy_version_migration)
        || !CU_add_test(s, "import lines, quantities, serials", test_import_lines)
        || !CU_add_test(s, "import lines: bad rows", test_import_lines_bad_rows)
        || !CU_add_test(s, "database location checked in words", test_check_location)
        || !CU_add_test(s, "retention: old scans and events only, in batches", test_retention)
        || !CU_add_test(s, "backup while writing; integrity_check", test_backup_and_integrity))
        return -1;
    return 0;
}
