/*
 * rmactl sheet --vendor V / --model M: the accessory barcodes of a vendor's products,
 * from the same policy files the daemon decides with (daemon/policy.h), as extra rows
 * of the command sheet (labels/sheet.h), one section per model or family list.
 */
#ifndef RMAD_CLI_SHEET_ACC_H
#define RMAD_CLI_SHEET_ACC_H

#include <stddef.h>

#include "daemon/scancmd.h"

typedef struct {
    scancmd_info_t *rows;
    size_t n;
    char **strings;         /* what the rows point to */
    size_t nstrings;
} sheet_acc_t;

/*
 * The rows for vendor (NULL: every vendor) and model (NULL: every list of the vendor;
 * else the list the station would use for that model, or for a family of that name),
 * from the policies in dir. Each
 * accessory gets its ACC-<NAME> barcode and, when the policy gives one, its part
 * number. Returns 0 and fills *out (sheet_acc_free), or -ENOENT / -EINVAL / -ENOMEM
 * with *errmsg a malloc'd line: no policy for the vendor, nothing listed, a bad
 * policies directory.
 */
int sheet_acc_rows(const char *dir, const char *vendor, const char *model, sheet_acc_t *out,
                   char **errmsg);

void sheet_acc_free(sheet_acc_t *a);

#endif
