/* The accessory sheet's groups (cli/sheet_acc.h). */
#include "cli/sheet_acc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msgf.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/scancmd.h"

/* Entries grow in one array; groups keep indexes until the end, then point into it. */
typedef struct {
    sheet_acc_t a;
    size_t *first;            /* per group: index of its first entry */
    size_t cap_entries;
} build_t;

void sheet_acc_free(sheet_acc_t *a)
{
    for (size_t i = 0; i < a->n_strings; i++)
        free(a->strings[i]);
    free(a->strings);
    free(a->entries);
    free(a->groups);
    memset(a, 0, sizeof(*a));
}

/* Keep s (malloc'd; NULL: out of memory) for the entries. NULL when out of memory. */
static const char *keep(build_t *b, char *s)
{
    char **n = s ? realloc(b->a.strings, (b->a.n_strings + 1) * sizeof(*n)) : NULL;
    if (!n) {
        free(s);
        return NULL;
    }
    b->a.strings = n;
    return n[b->a.n_strings++] = s;
}

static int add_group(build_t *b, const char *title)
{
    sheet_group_t *g = realloc(b->a.groups, (b->a.n + 1) * sizeof(*g));
    if (g)
        b->a.groups = g;
    size_t *f = g ? realloc(b->first, (b->a.n + 1) * sizeof(*f)) : NULL;
    if (!f)
        return -ENOMEM;
    b->first = f;
    g[b->a.n] = (sheet_group_t){ .title = title };
    f[b->a.n] = b->a.n_entries;
    b->a.n++;
    return 0;
}

static int add_entry(build_t *b, const char *barcode, const char *meaning)
{
    if (!barcode || !meaning)
        return -ENOMEM;
    sheet_entry_t *e = realloc(b->a.entries, (b->a.n_entries + 1) * sizeof(*e));
    if (!e)
        return -ENOMEM;
    b->a.entries = e;
    e[b->a.n_entries++] = (sheet_entry_t){ barcode, meaning };
    b->a.groups[b->a.n - 1].n++;
    return 0;
}

/* "a, b, c" of a NULL-terminated list into f. */
static void put_list(FILE *f, const char *const *l)
{
    for (size_t i = 0; l && l[i]; i++)
        fprintf(f, "%s%s", i ? ", " : "", l[i]);
}

/* One accessory list of policy p: a group with its items' barcodes. */
static int add_set(build_t *b, const policy_t *p, size_t i)
{
    const char *const *models, *const *families, *const *names, *const *parts;
    policy_accessory_set(p, i, &models, &families, &names, &parts);
    char *title = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&title, &len);
    if (!f)
        return -ENOMEM;
    fprintf(f, "%s: ", policy_vendor(p));
    put_list(f, models);
    if (models && models[0] && families && families[0])
        fputs(", ", f);
    put_list(f, families);
    const char *kept = fclose(f) == 0 ? keep(b, title) : NULL;
    if (!kept || add_group(b, kept) < 0)
        return -ENOMEM;
    for (size_t k = 0; names && names[k]; k++) {
        /* ACC-<NAME> only for names a station parses back to that accessory. */
        char *code = NULL;
        scancmd_t cmd;
        const char *why;
        if (asprintf(&code, "ACC-%s", names[k]) < 0)
            return -ENOMEM;
        for (char *c = code; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        if (scancmd_parse(code, &cmd, &why) == 1 && cmd.kind == SCANCMD_ACC) {
            char *meaning = NULL;
            const char *acc_code = keep(b, code);
            if (asprintf(&meaning, "present: %s", names[k]) < 0)
                meaning = NULL;
            if (add_entry(b, acc_code, keep(b, meaning)) < 0)
                return -ENOMEM;
        } else {
            free(code);
        }
        /* The part's own barcode; copied, as the policies go after this call. */
        if (parts && parts[k]) {
            char *meaning = NULL;
            if (asprintf(&meaning, "present: %s (its part number)", names[k]) < 0)
                meaning = NULL;
            if (add_entry(b, keep(b, strdup(parts[k])), keep(b, meaning)) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/*
 * A policy's own findings (vocabulary, issue 13): FIND-<NAME> for each, as the station
 * parses it back with the loaded set.
 */
static int add_own_findings(build_t *b, const policy_t *p)
{
    const enumdef_t *fs = policy_findings(p);
    if (!policy_custom_findings(p))
        return 0;
    char *title = NULL;
    if (asprintf(&title, "%s: findings of its own", policy_vendor(p)) < 0)
        return -ENOMEM;
    const char *kept = keep(b, title);
    if (!kept || add_group(b, kept) < 0)
        return -ENOMEM;
    for (int i = FINDING__COUNT; i < fs->count; i++) {
        char *code = NULL, *meaning = NULL;
        if (asprintf(&code, "FIND-%s", fs->names[i]) < 0)
            return -ENOMEM;
        for (char *c = code; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        if (asprintf(&meaning, "finding: %s", policy_finding_text(p, i)) < 0)
            meaning = NULL;
        if (add_entry(b, keep(b, code), keep(b, meaning)) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ACC-ALL and ACC-NONE as the command sheet has them (scancmd_table, the one list). */
static int add_answers(build_t *b)
{
    size_t n;
    const scancmd_info_t *t = scancmd_table(&n);
    int rc = add_group(b, "Accessories: the whole list at once");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (t[i].kind == SCANCMD_ACC_ALL || t[i].kind == SCANCMD_ACC_NONE)
            rc = add_entry(b, t[i].barcode, t[i].meaning);
    return rc;
}

int sheet_acc_groups(const char *dir, const char *local_dir, const char *vendor,
                     const char *model, sheet_acc_t *out, char **errmsg)
{
    policyset_t *ps = NULL;
    build_t b = { 0 };
    int rc = policyset_load_dirs(dir, local_dir, &ps, errmsg);
    if (rc < 0)
        return rc;
    const policy_t *only = vendor ? policyset_for_vendor(ps, vendor) : NULL;
    if (vendor && !only) {
        msgf_set(errmsg, "no policy for vendor '%s' in %s", vendor, dir);
        rc = -ENOENT;
        goto out;
    }
    rc = add_answers(&b);
    size_t np = only ? 1 : policyset_count(ps);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        const policy_t *p = only ? only : policyset_get(ps, i);
        if (model) {
            /* A model, or a family name: what a worker has on the box. */
            int k = policy_accessory_set_for(p, model, model);
            if (k >= 0)
                rc = add_set(&b, p, (size_t)k);
            continue;
        }
        for (size_t k = 0; rc == 0 && k < policy_accessory_set_count(p); k++)
            rc = add_set(&b, p, k);
        if (rc == 0)
            rc = add_own_findings(&b, p);
    }
    if (rc == 0 && b.a.n < 2) {
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
    for (size_t g = 0; rc == 0 && g < b.a.n; g++)
        b.a.groups[g].entries = b.a.entries + b.first[g];
    free(b.first);
    if (rc < 0)
        sheet_acc_free(&b.a);
    else
        *out = b.a;
    return rc;
}
