/*
 * libFuzzer target: the RMA CSV importer (files come from upstream systems). One real
 * SQLite database per fuzzing process, in a temp directory; a file that imports
 * cleanly is applied like any other.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static db_t *db;
static char dir[] = "/tmp/rmad-fuzz-csv-XXXXXX";

/* The database files go with the process. */
static void cleanup(void)
{
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    char path[64];
    db_close(&db);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/rmad.db%s", dir, suffixes[i]);
        (void)remove(path);
    }
    (void)remove(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[64];
    char *err = NULL;
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    snprintf(path, sizeof(path), "%s/rmad.db", dir);
    if (db_open(path, &db, &err) < 0) {
        fprintf(stderr, "fuzz_csv: %s\n", err ? err : "db_open failed");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    db_import_report_t rep;
    char *err = NULL;
    (void)db_rma_import_csv(db, (const char *)data, size, NULL, &rep, &err);
    db_import_report_clear(&rep);
    free(err);
    return 0;
}
