/* The command sheet's accessory sections (cli/sheet_acc.h). */
#include "cli/sheet_acc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/msgf.h"
#include "daemon/policy.h"
#include "daemon/policyset.h"

void sheet_acc_free(sheet_acc_t *a)
{
    for (size_t i = 0; i < a->nstrings; i++)
        free(a->strings[i]);
    free(a->strings);
    free(a->rows);
    memset(a, 0, sizeof(*a));
}

/* Keep s (malloc'd, may be NULL: out of memory) for the rows. NULL when out of memory. */
static const char *keep(sheet_acc_t *a, char *s)
{
    char **n = s ? realloc(a->strings, (a->nstrings + 1) * sizeof(*n)) : NULL;
    if (!n) {
        free(s);
        return NULL;
    }
    a->strings = n;
    return a->strings[a->nstrings++] = s;
}

static int add_row(sheet_acc_t *a, const char *barcode, const char *section, const char *meaning,
                   scancmd_kind_t kind)
{
    scancmd_info_t *n = realloc(a->rows, (a->n + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    a->rows = n;
    a->rows[a->n++] = (scancmd_info_t){ .barcode = barcode, .section = section,
                                        .meaning = meaning, .kind = kind };
    return 0;
}

/* "a, b, c" of a NULL-terminated list into f. */
static void put_list(FILE *f, const char *const *l, const char *sep)
{
    for (size_t i = 0; l && l[i]; i++)
        fprintf(f, "%s%s", i ? sep : "", l[i]);
}

/* One accessory list of policy p: a section with its items' barcodes. */
static int add_set(sheet_acc_t *a, const policy_t *p, size_t i)
{
    const char *const *models, *const *families, *const *names, *const *parts;
    policy_accessory_set(p, i, &models, &families, &names, &parts);
    char *sec = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sec, &len);
    if (!f)
        return -ENOMEM;
    fprintf(f, "Accessories: %s ", policy_vendor(p));
    put_list(f, models, ", ");
    if (models && families)
        fputs(", ", f);
    put_list(f, families, ", ");
    if (fclose(f) != 0)
        return -ENOMEM;
    const char *section = keep(a, sec);
    if (!section)
        return -ENOMEM;
    for (size_t k = 0; names && names[k]; k++) {
        /* ACC-<NAME> only for names a station can parse back (scancmd.h). */
        char *code = NULL, *meaning = NULL;
        scancmd_t cmd;
        const char *why;
        if (asprintf(&code, "ACC-%s", names[k]) < 0)
            return -ENOMEM;
        for (char *c = code; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        if (scancmd_parse(code, &cmd, &why) == 1 && cmd.kind == SCANCMD_ACC) {
            if (!keep(a, code) || asprintf(&meaning, "accessory present: %s", names[k]) < 0 ||
                !keep(a, meaning) || add_row(a, code, section, meaning, SCANCMD_ACC) < 0)
                return -ENOMEM;
        } else {
            free(code);
        }
        /* The part's own barcode, for the sheet; copied, the policies go after this. */
        const char *part = parts && parts[k] ? keep(a, strdup(parts[k])) : NULL;
        if (parts && parts[k] &&
            (!part || asprintf(&meaning, "accessory present: %s (its part number)", names[k]) < 0 ||
             !keep(a, meaning) || add_row(a, part, section, meaning, SCANCMD_ACC) < 0))
            return -ENOMEM;
    }
    return 0;
}

int sheet_acc_rows(const char *dir, const char *vendor, const char *model, sheet_acc_t *out,
                   char **errmsg)
{
    policyset_t *ps = NULL;
    sheet_acc_t a = { 0 };
    int rc = policyset_load(dir, &ps, errmsg);
    if (rc < 0)
        return rc;
    const policy_t *only = vendor ? policyset_for_vendor(ps, vendor) : NULL;
    if (vendor && !only) {
        msgf_set(errmsg, "no policy for vendor '%s' in %s", vendor, dir);
        rc = -ENOENT;
        goto out;
    }
    size_t np = only ? 1 : policyset_count(ps);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        const policy_t *p = only ? only : policyset_get(ps, i);
        if (model) {
            /* A model, or a family name: what a worker has on the box. */
            int k = policy_accessory_set_for(p, model, model);
            if (k >= 0)
                rc = add_set(&a, p, (size_t)k);
            continue;
        }
        for (size_t k = 0; rc == 0 && k < policy_accessory_set_count(p); k++)
            rc = add_set(&a, p, k);
    }
    if (rc == 0 && a.n == 0) {
        if (vendor)
            msgf_set(errmsg, "%s lists no accessories%s%s", vendor, model ? " for " : "",
                     model ? model : "");
        else
            msgf_set(errmsg, "no policy in %s lists accessories for %s", dir, model);
        rc = -ENOENT;
    }
    if (rc == -ENOMEM)
        msgf_set(errmsg, "out of memory");
out:
    policyset_destroy(&ps);
    if (rc < 0)
        sheet_acc_free(&a);
    else
        *out = a;
    return rc;
}
