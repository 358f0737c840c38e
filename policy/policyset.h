/*
 * policyset: every vendor policy of the daemon's policies directory, loaded together
 * (docs/policy.md: one YAML file per vendor; a sixth vendor is a new file).
 *
 * A set is loaded whole or not at all: one broken file fails the load, so that a
 * SIGHUP reload that meets a typo keeps serving with the old set instead of losing a
 * vendor. The daemon holds one current set and swaps the pointer on a successful
 * reload; stations look policies up through that pointer at each use and never keep
 * a policy_t across calls.
 */
#ifndef RMAD_POLICYSET_H
#define RMAD_POLICYSET_H

#include <stddef.h>

#include "policy/policy.h"

typedef struct policyset policyset_t;

/* Most policy files one directory may hold (a bound, not an expectation). */
#define POLICYSET_MAX_FILES 1024

/*
 * Load every "*.yaml" file of `dir` (regular files or links to them, names not
 * starting with '.'), in byte order of their names, with policy_load().
 *
 * Returns 0 and sets *out, or a negative errno with *errmsg set to a malloc'd line
 * (caller frees): the first broken file's "FILE:LINE: message" (-EINVAL and the like,
 * as policy_load), "DIR: strerror" when the directory cannot be read, "DIR: no *.yaml
 * policy files" (-ENOENT: a daemon without policies could decide nothing),
 * "FILE: vendor 'X' is also matched by OTHER" (-EEXIST: two files claiming one vendor
 * would make the choice depend on file names), more than POLICYSET_MAX_FILES (-E2BIG),
 * or -ENOMEM. *out is untouched on failure.
 */
int policyset_load(const char *dir, policyset_t **out, char **errmsg);

/*
 * The same, for shipped policies in dir with local overrides in local_dir
 * (/usr/share/rmad/policies and /etc/rmad/policies): a file of local_dir replaces the
 * file of dir with the same name, one with a new name adds a policy. local_dir may be
 * empty or absent (no overrides) and NULL (policyset_load). The set is then checked
 * as one directory's would be; messages name the file actually read.
 */
int policyset_load_dirs(const char *dir, const char *local_dir, policyset_t **out,
                        char **errmsg);

/* Free the set and its policies. NULL is fine; clears *set. */
void policyset_destroy(policyset_t **set);

/* Number of policies in the set (at least 1). */
size_t policyset_count(const policyset_t *set);

/* Policy i, in file-name order; NULL when i is out of range. Owned by the set. */
const policy_t *policyset_get(const policyset_t *set, size_t i);

/*
 * The policy for a vendor name (its vendor or an alias, case-insensitive:
 * policy_matches_vendor), or NULL when no file claims it (or vendor is NULL). Owned
 * by the set: valid until the set is destroyed.
 */
const policy_t *policyset_for_vendor(const policyset_t *set, const char *vendor);

/*
 * Is `name` (lowercase) a finding some policy of the set declares in its vocabulary
 * (docs/policy.md, "Vocabulary")? The first such policy, or NULL (also for set NULL).
 */
const policy_t *policyset_finding_owner(const policyset_t *set, const char *name);

/* Does p's vocabulary hold finding `name` (built-in ones included)? Its bit, or -1. */
int policy_finding_bit(const policy_t *p, const char *name);

#endif
