#include "policy/scancmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIND_ROW(upper, lower, text) \
    { "FIND-" #upper, "Findings", "finding: " text, SCANCMD_FIND },

/* Meanings follow the contract's table of command barcodes. */
static const scancmd_info_t commands[] = {
    { "PKG-ORIGINAL", "Packaging", "packaging: the original box", SCANCMD_PKG_ORIGINAL },
    { "PKG-REPLACEMENT", "Packaging", "packaging: a replacement box",
      SCANCMD_PKG_REPLACEMENT },
    { "PKG-NONE", "Packaging", "packaging: none", SCANCMD_PKG_NONE },
    { "FOAM-MISSING", "Packaging", "original foam/inserts not in place",
      SCANCMD_FOAM_MISSING },
    { "SEAL-INTACT", "Packaging", "factory seal intact", SCANCMD_SEAL_INTACT },
    { "SEAL-BROKEN", "Packaging", "factory seal broken", SCANCMD_SEAL_BROKEN },
    { "PKG-UNMARKED", "Packaging", "RMA number not marked on the outer packaging",
      SCANCMD_PKG_UNMARKED },
    { "SERIAL-DAMAGED", "Serial label", "serial label damaged", SCANCMD_SERIAL_DAMAGED },
    { "SERIAL-REMOVED", "Serial label", "serial label removed", SCANCMD_SERIAL_REMOVED },
    /* Single accessories (ACC-<name>) are on each vendor's accessory sheet
     * (rmactl sheet --vendor), from its policy's lists. */
    { "ACC-ALL", "Accessories",
      "every accessory expected for this product is present (single ones: ACC-<name> "
      "from the vendor's accessory sheet, or the part's own barcode)",
      SCANCMD_ACC_ALL },
    { "ACC-NONE", "Accessories",
      "no accessory present (after single ACC- scans: the others are missing)",
      SCANCMD_ACC_NONE },
    RMAD_FINDINGS(FIND_ROW)
    { "FAULT-CONFIRMED", "Test result", "test result: fault confirmed",
      SCANCMD_FAULT_CONFIRMED },
    { "FAULT-NFF", "Test result", "test result: no fault found", SCANCMD_FAULT_NFF },
    { "FAULT-DOA", "Test result", "test result: dead on arrival", SCANCMD_FAULT_DOA },
    { "FAULT-UNTESTED", "Test result", "test result: not tested at the dock",
      SCANCMD_FAULT_UNTESTED },
    { "CMP-BATTERY", "Component", "the claim is about the battery", SCANCMD_CMP },
    { "CMP-ELECTRICAL", "Component", "the claim is about the electrical parts",
      SCANCMD_CMP },
    { "CMP-MECHANICAL", "Component", "the claim is about the mechanical parts",
      SCANCMD_CMP },
    { "CMP-LAMP", "Component", "the claim is about the lamp", SCANCMD_CMP },
    { "CMD-DONE", "Receipt",
      "finish: evaluate policy, store, publish, print the disposition label",
      SCANCMD_DONE },
    { "CMD-CANCEL", "Receipt", "abandon the open receipt (kept, marked cancelled)",
      SCANCMD_CANCEL },
    { "CMD-REPRINT", "Receipt", "print the station's last label again", SCANCMD_REPRINT },
    { "CMD-NORMA", "Receipt", "receive a unit that arrived with no RMA (the serial comes next)",
      SCANCMD_NORMA },
};

#undef FIND_ROW

const scancmd_info_t *scancmd_table(size_t *n)
{
    *n = sizeof(commands) / sizeof(commands[0]);
    return commands;
}

/* The prefixes; `param` is the kind of a parameterised family, or -1 for fixed words. */
static const struct {
    const char *prefix;
    int param;
} families[] = {
    { "PKG-", -1 },   { "FOAM-", -1 },          { "SEAL-", -1 },
    { "SERIAL-", -1 }, { "FAULT-", -1 },        { "CMD-", -1 },
    { "ACC-", SCANCMD_ACC }, { "CMP-", SCANCMD_CMP }, { "FIND-", SCANCMD_FIND },
};

static _Thread_local char reason_buf[320];

__attribute__((format(printf, 1, 2))) static const char *reasonf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason_buf, sizeof(reason_buf), fmt, ap);
    va_end(ap);
    return reason_buf;
}

/* Scanned text for a reason: printable ASCII only, at most 40 characters. */
static const char *shown(const char *s, char buf[48])
{
    size_t i;
    for (i = 0; s[i] && i < 40; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    strcpy(buf + i, s[i] ? "..." : "");
    return buf;
}

/* ACC/CMP names: lowercased into out, [a-z0-9_-]{1,SCANCMD_NAME_MAX}. */
static int parse_name(const char *what, const char *s, char out[SCANCMD_NAME_MAX + 1],
                      const char **reason)
{
    char buf[48];
    size_t n = strlen(s);
    if (n == 0) {
        *reason = reasonf("%s without a name", what);
        return -EINVAL;
    }
    if (n > SCANCMD_NAME_MAX) {
        *reason = reasonf("%s name longer than %d characters", what, SCANCMD_NAME_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            *reason = reasonf("%s name \"%s\" may hold only letters, digits, '_' and '-'",
                              what, shown(s, buf));
            return -EINVAL;
        }
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

/* "unknown command ... (PKG-ORIGINAL, PKG-REPLACEMENT, ...)" for a fixed family. */
static const char *unknown_command(const char *text, const char *prefix)
{
    char buf[48];
    size_t plen = strlen(prefix);
    int len = snprintf(reason_buf, sizeof(reason_buf), "unknown command \"%s\" (",
                       shown(text, buf));
    const char *sep = "";
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strncmp(commands[i].barcode, prefix, plen) != 0)
            continue;
        if (len >= 0 && (size_t)len < sizeof(reason_buf))
            len += snprintf(reason_buf + len, sizeof(reason_buf) - (size_t)len, "%s%s", sep,
                            commands[i].barcode);
        sep = ", ";
    }
    if (len >= 0 && (size_t)len < sizeof(reason_buf))
        snprintf(reason_buf + len, sizeof(reason_buf) - (size_t)len, ")");
    return reason_buf;
}

int scancmd_parse(const char *text, scancmd_t *out, const char **reason)
{
    return scancmd_parse_in(text, NULL, out, reason);
}

int scancmd_parse_in(const char *text, const policyset_t *set, scancmd_t *out,
                     const char **reason)
{
    if (!text)
        return 0;
    size_t f, nf = sizeof(families) / sizeof(families[0]);
    for (f = 0; f < nf; f++)
        if (strncasecmp(text, families[f].prefix, strlen(families[f].prefix)) == 0)
            break;
    if (f == nf)
        return 0;

    const char *arg = text + strlen(families[f].prefix);
    scancmd_t cmd = { 0 };
    char buf[48];
    int r;
    switch (families[f].param) {
    case SCANCMD_ACC:
        cmd.kind = SCANCMD_ACC;
        if ((r = parse_name("ACC-", arg, cmd.name, reason)) < 0)
            return r;
        /* The checklist answers, not accessories: no product ships an "all". */
        if (strcmp(cmd.name, "all") == 0 || strcmp(cmd.name, "none") == 0) {
            cmd.kind = cmd.name[0] == 'a' ? SCANCMD_ACC_ALL : SCANCMD_ACC_NONE;
            cmd.name[0] = '\0';
        }
        break;
    case SCANCMD_CMP:
        cmd.kind = SCANCMD_CMP;
        if ((r = parse_name("CMP-", arg, cmd.name, reason)) < 0)
            return r;
        break;
    case SCANCMD_FIND:
        cmd.kind = SCANCMD_FIND;
        if (!*arg) {
            *reason = "FIND- without a finding";
            return -EINVAL;
        }
        if (finding_parse(arg, &cmd.finding) < 0) {
            /* A policy's own finding: the name as declared (lowercase). */
            char low[SCANCMD_NAME_MAX + 1];
            size_t n = strlen(arg);
            for (size_t i = 0; i < n && n <= SCANCMD_NAME_MAX; i++)
                low[i] = arg[i] >= 'A' && arg[i] <= 'Z' ? (char)(arg[i] - 'A' + 'a') : arg[i];
            if (n <= SCANCMD_NAME_MAX)
                low[n] = '\0';
            if (n > SCANCMD_NAME_MAX || !policyset_finding_owner(set, low)) {
                *reason = reasonf("unknown finding \"%s\"", shown(arg, buf));
                return -EINVAL;
            }
            cmd.finding = FINDING__COUNT;
            memcpy(cmd.name, low, n + 1);
        }
        break;
    default: {
        size_t i, n = sizeof(commands) / sizeof(commands[0]);
        for (i = 0; i < n; i++)
            if (strcasecmp(text, commands[i].barcode) == 0)
                break;
        if (i == n) {
            *reason = unknown_command(text, families[f].prefix);
            return -EINVAL;
        }
        cmd.kind = commands[i].kind;
        break;
    }
    }
    *out = cmd;
    return 1;
}
