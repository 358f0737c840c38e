/* The policies directory, loaded as one set (docs/policy.md). */
#include "policy/policyset.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct policyset {
    policy_t **p;
    size_t n;
};

void policyset_destroy(policyset_t **set)
{
    if (!set || !*set)
        return;
    for (size_t i = 0; i < (*set)->n; i++)
        policy_destroy(&(*set)->p[i]);
    free((*set)->p);
    free(*set);
    *set = NULL;
}

size_t policyset_count(const policyset_t *set)
{
    return set->n;
}

const policy_t *policyset_get(const policyset_t *set, size_t i)
{
    return i < set->n ? set->p[i] : NULL;
}

const policy_t *policyset_for_vendor(const policyset_t *set, const char *vendor)
{
    if (!set || !vendor)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        if (policy_matches_vendor(set->p[i], vendor))
            return set->p[i];
    return NULL;
}

static int msg(char **errmsg, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int msg(char **errmsg, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(errmsg, fmt, ap) < 0)
        *errmsg = NULL;
    va_end(ap);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_policy_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/*
 * Paths of the policy files of dir, sorted; returns 0 or an error with *errmsg. An
 * empty (or, with may_be_absent, missing) directory gives none when may_be_absent.
 */
static int list_files(const char *dir, bool may_be_absent, char ***out, size_t *nout,
                      char **errmsg)
{
    DIR *d = opendir(dir);
    if (!d && may_be_absent && errno == ENOENT) {
        *out = NULL;
        *nout = 0;
        return 0;
    }
    if (!d) {
        int e = errno;
        return msg(errmsg, -e, "%s: %s", dir, strerror(e));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    const char *sep = *dir && dir[strlen(dir) - 1] == '/' ? "" : "/";
    int r = 0;
    struct dirent *de;

    errno = 0;
    while ((de = readdir(d))) {
        if (!is_policy_name(de->d_name))
            continue;
        char *path;
        if (asprintf(&path, "%s%s%s", dir, sep, de->d_name) < 0) {
            r = -ENOMEM;
            break;
        }
        /* stat follows links: a link to a policy file is a policy file. */
        struct stat sb;
        if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            errno = 0;
            continue;
        }
        if (n == POLICYSET_MAX_FILES) {
            free(path);
            r = msg(errmsg, -E2BIG, "%s: more than %d policy files", dir, POLICYSET_MAX_FILES);
            break;
        }
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            char **grown = realloc(names, c * sizeof(*names));
            if (!grown) {
                free(path);
                r = -ENOMEM;
                break;
            }
            names = grown;
            cap = c;
        }
        names[n++] = path;
        errno = 0;
    }
    if (r == 0 && errno != 0) {
        int e = errno;
        r = msg(errmsg, -e, "%s: %s", dir, strerror(e));
    }
    closedir(d);
    if (r == 0 && n == 0 && !may_be_absent)
        r = msg(errmsg, -ENOENT, "%s: no *.yaml policy files", dir);
    if (r < 0) {
        free_names(names, n);
        return r;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    *nout = n;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int cmp_base_names(const void *a, const void *b)
{
    return strcmp(base_name(*(char *const *)a), base_name(*(char *const *)b));
}

/*
 * The shipped files with the local ones laid over them: a local file replaces the
 * shipped file of the same name, a new name is added; sorted by file name. Takes
 * both lists (freed or moved into *out). O((n + m) log(n + m)).
 */
static int overlay(char **shipped, size_t n, char **local, size_t m, char ***out,
                   size_t *nout)
{
    char **all = realloc(shipped, (n + m ? n + m : 1) * sizeof(*all));
    if (!all) {
        free_names(shipped, n);
        free_names(local, m);
        return -ENOMEM;
    }
    size_t k = n;
    for (size_t j = 0; j < m; j++) {
        size_t i = 0;
        while (i < n && strcmp(base_name(all[i]), base_name(local[j])) != 0)
            i++;
        if (i < n) {
            free(all[i]);
            all[i] = local[j];
        } else {
            all[k++] = local[j];
        }
    }
    free(local);
    if (k > 1)
        qsort(all, k, sizeof(*all), cmp_base_names);
    *out = all;
    *nout = k;
    return 0;
}

int policyset_load(const char *dir, policyset_t **out, char **errmsg)
{
    return policyset_load_dirs(dir, NULL, out, errmsg);
}

int policyset_load_dirs(const char *dir, const char *local_dir, policyset_t **out,
                        char **errmsg)
{
    char **paths = NULL, **local = NULL;
    size_t n = 0, m = 0;
    int r;

    *errmsg = NULL;
    if ((r = list_files(dir, false, &paths, &n, errmsg)) < 0)
        return r;
    if (local_dir) {
        if ((r = list_files(local_dir, true, &local, &m, errmsg)) < 0) {
            free_names(paths, n);
            return r;
        }
        if ((r = overlay(paths, n, local, m, &paths, &n)) < 0)
            return r;
    }
    policyset_t *set = calloc(1, sizeof(*set));
    if (!set || !(set->p = calloc(n, sizeof(*set->p)))) {
        free(set);
        free_names(paths, n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        r = policy_load(paths[i], &set->p[i], errmsg);
        if (r == 0)
            set->n++;
    }
    /*
     * One vendor, one file: otherwise the policy applied would depend on the order of
     * file names. policy.h shows each policy's vendor name (not its aliases), so a
     * vendor matched by another file is caught; two files sharing only an alias are not.
     */
    for (size_t i = 0; i < set->n && r == 0; i++)
        for (size_t j = 0; j < set->n && r == 0; j++)
            if (i != j && policy_matches_vendor(set->p[j], policy_vendor(set->p[i])))
                r = msg(errmsg, -EEXIST, "%s: vendor '%s' is also matched by %s",
                        policy_file(set->p[i]), policy_vendor(set->p[i]),
                        policy_file(set->p[j]));
    free_names(paths, n);
    if (r < 0) {
        policyset_destroy(&set);
        return r;
    }
    *out = set;
    return 0;
}

int policy_finding_bit(const policy_t *p, const char *name)
{
    return enumdef_find(policy_findings(p), name);
}

const policy_t *policyset_finding_owner(const policyset_t *set, const char *name)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (policy_finding_bit(set->p[i], name) >= FINDING__COUNT)
            return set->p[i];
    return NULL;
}
