/*
 * rmactl sheet --vendor V / --model M: the accessory sheet, to lay beside the command
 * sheet. The accessory barcodes of a vendor's products, from the same policy files
 * the daemon decides with (policy/policy.h), one group per model or family list, after
 * the two answers that cover a whole list (ACC-ALL, ACC-NONE).
 */
#ifndef RMAD_CLI_SHEET_ACC_H
#define RMAD_CLI_SHEET_ACC_H

#include <stddef.h>

#include "labels/sheet.h"

typedef struct {
    sheet_group_t *groups;
    size_t n;
    sheet_entry_t *entries;   /* what the groups point into */
    size_t n_entries;
    char **strings;           /* what the entries point to */
    size_t n_strings;
} sheet_acc_t;

/*
 * The groups for vendor (NULL: every vendor) and model (NULL: every list of the
 * vendor; else the list the station would use for that model, or for a family of that
 * name), from the policies in dir (with local_dir's overrides, NULL: none). Each accessory gets its ACC-<NAME> barcode and,
 * when the policy gives one, its part number. Returns 0 and fills *out
 * (sheet_acc_free), or -ENOENT / -EINVAL / -ENOMEM with *errmsg a malloc'd line: no
 * policy for the vendor, nothing listed, a bad policies directory.
 */
int sheet_acc_groups(const char *dir, const char *local_dir, const char *vendor,
                     const char *model, sheet_acc_t *out, char **errmsg);

void sheet_acc_free(sheet_acc_t *a);

#endif
