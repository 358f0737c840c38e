/*
 * What the build knows about itself: the version (the VERSION file, plus `git
 * describe` when built from a checkout) and the source tree it was built in, which
 * the built-in default config resolves its relative paths against (so `make run`'s
 * daemon and an `rmactl status` typed in any directory agree on where it is).
 * Both come from the Makefile; nothing here reads files or the environment.
 */
#ifndef RMAD_BUILD_H
#define RMAD_BUILD_H

/* "0.1.0", or "0.1.0 (git 5c7ca6e-dirty)" from a checkout. Static text. */
const char *build_version(void);

/* The absolute directory the programs were built in (the repository root). */
const char *build_source_root(void);

/* The installed config's path, $(SYSCONFDIR)/rmad/rmad.conf. */
const char *build_installed_config(void);

#endif
