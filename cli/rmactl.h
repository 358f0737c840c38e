/* rmactl: shared pieces of the command-line client's subcommands. */
#ifndef RMAD_CLI_RMACTL_H
#define RMAD_CLI_RMACTL_H

#include <stddef.h>

#include "labels/label.h"

/* Exit codes: 0 done, 1 failed (daemon unreachable, I/O), 2 bad input or usage. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_BADINPUT = 2 };

/* Print "rmactl: " + message to stderr, one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Read a whole file ("-" = stdin) up to max bytes. Returns malloc'd NUL-terminated
 * text and its length, or NULL with the error printed.
 */
char *cli_read_input(const char *path, size_t max, size_t *len);

int cmd_policy(int argc, char **argv);

/* Commands that talk to a running rmad (cli/cmd_daemon.c); argv[0] is the command. */
int cmd_status(int argc, char **argv);
int cmd_receipts(int argc, char **argv);
int cmd_rma(int argc, char **argv);
int cmd_reprint(int argc, char **argv);
int cmd_labels(int argc, char **argv);

/* rmactl scanners (cli/cmd_scanners.c): configured and attached scanners. */
int cmd_scanners(int argc, char **argv);
int cmd_watch(int argc, char **argv);
/* cmd_forward.c: forward init (the JetStream stream). */
int cmd_forward(int argc, char **argv);

/* Operations (cli/cmd_ops.c): CURVE keys, database backup, health checks. */
int cmd_keygen(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/*
 * Rendering commands (cli/cmd_label.c), in-process. cli_label_write renders l (see
 * labels/label.h) and writes it to path ("-" = stdout): EXIT_OK, or EXIT_FAIL with
 * the error printed.
 */
int cli_label_write(const label_t *l, label_format_t fmt, label_size_t size, int dpi,
                    const char *path);
int cmd_label(int argc, char **argv);
int cmd_sheet(int argc, char **argv);

#endif
