/*
 * rmactl: the command-line client of rmad. Subcommands that only need local files
 * (policy eval/check) run in-process on the same library as the daemon; the others
 * talk to a running daemon over its control socket.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/rmactl.h"
#include "core/build.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rmactl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

char *cli_read_input(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf) {
        cli_error("out of memory");
        return NULL;
    }
    if (bad || n > max) {
        cli_error("%s: %s", strcmp(path, "-") == 0 ? "stdin" : path,
                  bad ? "read error" : "input too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Every command's usage, as `rmactl --help` lists it and `rmactl CMD --help` shows it. */
static const struct {
    const char *cmd;
    const char *text;
} COMMANDS[] = {
    { "policy", "  policy eval --policy FILE [CASE.json | -]   evaluate one return (JSON result)\n"
                "  policy check [--strict] FILE...              validate policy files (warnings:\n"
                "                                               exit 0, with --strict exit 2)\n"
                "  policy test [--policies DIR] CASEFILE...     run policy regression cases\n" },
    { "status", "  status [--json]                              stations, scanners, printers, open receipts\n" },
    { "receipts", "  receipts [--limit N] [--policy-version V] [--json]\n"
                  "                                               recent receipts with dispositions\n" },
    { "rma", "  rma import FILE.csv                          import RMAs (all rows or none)\n"
             "  rma show NUMBER [--json]                     lines, serials, every unit's receipt\n"
             "  rma list [--state S] [--vendor V] [--json]   RMAs with their progress\n"
             "  rma close NUMBER --reason TEXT               close an RMA that will not be completed\n" },
    { "reprint", "  reprint RECEIPT                              print a receipt's label again\n" },
    { "labels", "  labels [--state queued|failed|printed|cancelled|all] [--station S] [--limit N] [--json]\n"
                "                                               labels with printer, attempts, last error\n"
                "  labels cancel LABEL                          give up a waiting label\n" },
    { "scanners", "  scanners [--json]                            configured scanners, USB HID devices and\n"
                  "                                               serial ports here, with config lines\n" },
    { "watch", "  watch [--from N] [--count N] [--key NAME.key --server-key SERVER.pub]\n"
               "                                               print events as SEQ TOPIC JSON (the\n"
               "                                               keys: when the daemon uses CURVE)\n" },
    { "keygen", "  keygen NAME                                  write a CURVE key pair NAME.key (secret,\n"
                "                                               mode 0600) and NAME.pub\n" },
    { "backup", "  backup FILE                                  a consistent copy of the database,\n"
                "                                               also while rmad runs\n" },
    { "doctor", "  doctor [--min-free-mb N]                     check config, policies, database, disk,\n"
                "                                               printers, scanners and keys (exit 1:\n"
                "                                               a problem, said in words)\n" },
    { "forward", "  forward init [--replicas N] [--max-age-days N]\n"
                 "                                               create (or check) the JetStream stream\n" },
    { "label", "  label RECEIPT|--json FILE [--format zpl|pdf|png] [--size 4x6|2x1] [--dpi 203|300] -o FILE\n"
               "                                               render a disposition label; the format\n"
               "                                               is FILE's extension (-o - needs --format)\n" },
    { "sheet", "  sheet [--paper a4|letter] [--vendor V] [--model M] [--policies DIR] -o FILE.pdf\n"
               "                                               the command-barcode sheet (with the\n"
               "                                               accessory barcodes of V's products)\n" },
};

static void usage(FILE *out)
{
    fputs("usage: rmactl [--config FILE] COMMAND ...\n\n", out);
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        fprintf(out, "%s%s", COMMANDS[i].text,
                /* groups: policies; the daemon's commands; local devices and printouts */
                strcmp(COMMANDS[i].cmd, "policy") == 0 ||
                strcmp(COMMANDS[i].cmd, "forward") == 0 ? "\n" : "");
    fputs("\n"
          "The daemon's sockets come from --config FILE, else $RMAD_CONFIG, else\n", out);
    fprintf(out, "%s, else the built-in default config (rmad --default-config).\n",
            build_installed_config());
    fputs("Exit status: 0 done, 1 failed, 2 bad input or usage. rmactl --version: the version.\n",
          out);
}

/*
 * `rmactl CMD ... --help`: that command's usage on stdout, exit 0, whatever else is on
 * the line (so `rmactl policy eval --help` is help, not an unknown option). Returns 1
 * when it printed, 0 when there is no --help or no such command.
 */
static int command_help(int argc, char **argv)
{
    int asked = 0;
    for (int i = 2; i < argc; i++)
        asked |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    for (size_t i = 0; asked && i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (strcmp(COMMANDS[i].cmd, argv[1]) == 0) {
            printf("usage: rmactl [--config FILE] COMMAND ...\n%s", COMMANDS[i].text);
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_BADINPUT;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("rmactl %s\n", build_version());
        return EXIT_OK;
    }
    /* A global --config FILE before the command: the commands read $RMAD_CONFIG. */
    if (strcmp(argv[1], "--config") == 0 || strncmp(argv[1], "--config=", 9) == 0) {
        const char *path = argv[1][8] == '=' ? argv[1] + 9 : argc > 2 ? argv[2] : NULL;
        int used = argv[1][8] == '=' ? 1 : 2;
        if (!path || !*path || argc <= used + 1 || setenv("RMAD_CONFIG", path, 1) < 0) {
            usage(stderr);
            return EXIT_BADINPUT;
        }
        argc -= used;
        argv += used;
    }
    if (command_help(argc, argv))
        return EXIT_OK;
    if (strcmp(argv[1], "policy") == 0)
        return cmd_policy(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "receipts") == 0)
        return cmd_receipts(argc - 1, argv + 1);
    if (strcmp(argv[1], "rma") == 0)
        return cmd_rma(argc - 1, argv + 1);
    if (strcmp(argv[1], "labels") == 0)
        return cmd_labels(argc - 1, argv + 1);
    if (strcmp(argv[1], "reprint") == 0)
        return cmd_reprint(argc - 1, argv + 1);
    if (strcmp(argv[1], "scanners") == 0)
        return cmd_scanners(argc - 1, argv + 1);
    if (strcmp(argv[1], "watch") == 0)
        return cmd_watch(argc - 1, argv + 1);
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "backup") == 0)
        return cmd_backup(argc - 1, argv + 1);
    if (strcmp(argv[1], "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
    if (strcmp(argv[1], "forward") == 0)
        return cmd_forward(argc - 1, argv + 1);
    if (strcmp(argv[1], "label") == 0)
        return cmd_label(argc - 1, argv + 1);
    if (strcmp(argv[1], "sheet") == 0)
        return cmd_sheet(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'rmactl --help')", argv[1]);
    return EXIT_BADINPUT;
}
