/* Build facts (core/build.h), passed in by the Makefile for this one object. */
#include "core/build.h"

#ifndef BUILD_VERSION
#define BUILD_VERSION "unknown"
#endif
#ifndef BUILD_SOURCE_ROOT
#define BUILD_SOURCE_ROOT "."
#endif
#ifndef BUILD_INSTALLED_CONFIG
#define BUILD_INSTALLED_CONFIG "/etc/rmad/rmad.conf"
#endif

const char *build_version(void)
{
    return BUILD_VERSION;
}

const char *build_source_root(void)
{
    return BUILD_SOURCE_ROOT;
}

const char *build_installed_config(void)
{
    return BUILD_INSTALLED_CONFIG;
}
