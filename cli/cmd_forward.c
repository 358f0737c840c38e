/*
 * rmactl forward init: create the JetStream stream the [forward] section names, or
 * check the one that exists (daemon/forward.h). It talks to NATS itself, not to rmad:
 * the stream is set up once per company, before the first dock forwards into it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/rmactl.h"
#include "core/config.h"
#include "daemon/forward.h"

static const char USAGE[] = "[--config FILE] forward init [--replicas 1|3|5] [--max-age-days N]";

static int number(const char *what, const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < min || v > max) {
        cli_error("forward init: %s: expected %ld to %ld, got '%s'", what, min, max, s ? s : "");
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int cmd_forward(int argc, char **argv)
{
    const char *config = NULL;
    long replicas = 1, days = 0;
    if (argc < 2 || strcmp(argv[1], "init") != 0) {
        cli_error("usage: rmactl %s", USAGE);
        return EXIT_BADINPUT;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc;
        if (strcmp(a, "--config") == 0 && v)
            config = v, rc = 0;
        else if (strcmp(a, "--replicas") == 0)
            rc = number("--replicas", v, 1, 5, &replicas);
        else if (strcmp(a, "--max-age-days") == 0)
            rc = number("--max-age-days", v, 0, 36500, &days);
        else {
            cli_error("forward init: unknown argument '%s' (usage: rmactl %s)", a, USAGE);
            return EXIT_BADINPUT;
        }
        if (rc < 0)
            return EXIT_BADINPUT;
        i++;
    }
    config_t *cfg = NULL;
    char *err = NULL, *report = NULL;
    if (client_load_config(config, &cfg, &err) < 0) {
        cli_error("%s", err ? err : "cannot load the config");
        free(err);
        return EXIT_BADINPUT;
    }
    if (!cfg->forward) {
        cli_error("%s has no [forward] section (see rmad.conf(5))", cfg->source);
        config_destroy(&cfg);
        return EXIT_BADINPUT;
    }
    int rc = forward_stream_init(cfg->forward, (int)replicas, (int64_t)days * 86400, &report, &err);
    if (rc < 0)
        cli_error("forward init: %s", err ? err : strerror(-rc));
    else
        printf("%s\n", report);
    free(report);
    free(err);
    config_destroy(&cfg);
    return rc < 0 ? EXIT_FAIL : EXIT_OK;
}
