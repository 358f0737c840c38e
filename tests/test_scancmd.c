/* Command barcodes (policy/scancmd.h) and the findings list (policy/findings.h). */
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "policy/findings.h"
#include "policy/scancmd.h"
#include "tests/suites.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *text;
    scancmd_kind_t kind;
} fixed[] = {
    { "PKG-ORIGINAL", SCANCMD_PKG_ORIGINAL },
    { "PKG-REPLACEMENT", SCANCMD_PKG_REPLACEMENT },
    { "PKG-NONE", SCANCMD_PKG_NONE },
    { "FOAM-MISSING", SCANCMD_FOAM_MISSING },
    { "SEAL-BROKEN", SCANCMD_SEAL_BROKEN },
    { "SEAL-INTACT", SCANCMD_SEAL_INTACT },
    { "ACC-ALL", SCANCMD_ACC_ALL },
    { "ACC-NONE", SCANCMD_ACC_NONE },
    { "PKG-UNMARKED", SCANCMD_PKG_UNMARKED },
    { "SERIAL-DAMAGED", SCANCMD_SERIAL_DAMAGED },
    { "SERIAL-REMOVED", SCANCMD_SERIAL_REMOVED },
    { "FAULT-CONFIRMED", SCANCMD_FAULT_CONFIRMED },
    { "FAULT-NFF", SCANCMD_FAULT_NFF },
    { "FAULT-DOA", SCANCMD_FAULT_DOA },
    { "FAULT-UNTESTED", SCANCMD_FAULT_UNTESTED },
    { "CMD-DONE", SCANCMD_DONE },
    { "CMD-CANCEL", SCANCMD_CANCEL },
    { "CMD-REPRINT", SCANCMD_REPRINT },
    { "CMD-NORMA", SCANCMD_NORMA },
};

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Alternate case: "pKg-oRiGiNaL". */
static void mixed(char *s)
{
    for (int i = 0; s[i]; i++)
        s[i] = (char)(i % 2 ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
}

static void test_fixed_commands(void)
{
    for (size_t i = 0; i < N_ELEMS(fixed); i++) {
        char buf[64];
        void (*variant[])(char *) = { NULL, lower, mixed };
        for (size_t v = 0; v < N_ELEMS(variant); v++) {
            snprintf(buf, sizeof(buf), "%s", fixed[i].text);
            if (variant[v])
                variant[v](buf);
            scancmd_t cmd;
            const char *reason = NULL;
            CU_ASSERT_EQUAL(scancmd_parse(buf, &cmd, &reason), 1);
            CU_ASSERT_EQUAL(cmd.kind, fixed[i].kind);
            CU_ASSERT_STRING_EQUAL(cmd.name, "");
            CU_ASSERT_PTR_NULL(reason);
        }
    }
}

static void test_findings(void)
{
    CU_ASSERT_EQUAL(FINDING__COUNT, 16);
    const char *contract[] = { "cosmetic_damage", "physical_damage", "liquid_damage",
                               "electrical_damage", "act_of_god", "tampered", "modified",
                               "improper_install", "mishandled", "wear", "non_vendor_parts",
                               "opened", "license_activated", "missing_parts",
                               "wrong_product", "transit_damage" };
    CU_ASSERT_EQUAL_FATAL(N_ELEMS(contract), FINDING__COUNT);
    for (int i = 0; i < FINDING__COUNT; i++) {
        finding_t f = FINDING__COUNT;
        CU_ASSERT_STRING_EQUAL(finding_name((finding_t)i), contract[i]);
        CU_ASSERT_STRING_EQUAL(finding_names[i], contract[i]);
        CU_ASSERT_PTR_NOT_NULL(finding_description((finding_t)i));
        CU_ASSERT_EQUAL(finding_parse(contract[i], &f), 0);
        CU_ASSERT_EQUAL(f, (finding_t)i);

        /* FIND-<FINDING>, upper, lower and mixed case. */
        char buf[64], upper[48];
        size_t k;
        for (k = 0; contract[i][k]; k++)
            upper[k] = (char)toupper((unsigned char)contract[i][k]);
        upper[k] = '\0';
        const char *forms[] = { "FIND-", "find-", "Find-" };
        for (size_t v = 0; v < N_ELEMS(forms); v++) {
            snprintf(buf, sizeof(buf), "%s%s", forms[v], v == 1 ? contract[i] : upper);
            scancmd_t cmd;
            const char *reason = NULL;
            CU_ASSERT_EQUAL(scancmd_parse(buf, &cmd, &reason), 1);
            CU_ASSERT_EQUAL(cmd.kind, SCANCMD_FIND);
            CU_ASSERT_EQUAL(cmd.finding, (finding_t)i);
        }
    }
    CU_ASSERT_STRING_EQUAL(finding_description(FINDING_ACT_OF_GOD),
                           "act of God (fire, flood, earthquake)");
    CU_ASSERT_PTR_NULL(finding_name(FINDING__COUNT));
    CU_ASSERT_PTR_NULL(finding_name((finding_t)-1));
    CU_ASSERT_PTR_NULL(finding_description(FINDING__COUNT));
    finding_t f = FINDING_WEAR;
    CU_ASSERT_EQUAL(finding_parse("Liquid_Damage", &f), 0);
    CU_ASSERT_EQUAL(f, FINDING_LIQUID_DAMAGE);
    f = FINDING_WEAR;
    const char *bad[] = { "", "banana", "liquid-damage", "liquid damage", "wear ", "opened_" };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        CU_ASSERT_EQUAL(finding_parse(bad[i], &f), -EINVAL);
        CU_ASSERT_EQUAL(f, FINDING_WEAR);
    }
    CU_ASSERT_EQUAL(finding_parse(NULL, &f), -EINVAL);
}

static void test_acc_cmp(void)
{
    const struct {
        const char *text;
        scancmd_kind_t kind;
        const char *name;
    } ok[] = {
        { "ACC-REMOTE", SCANCMD_ACC, "remote" },
        { "acc-Power_Supply", SCANCMD_ACC, "power_supply" },
        { "ACC-HDD-TRAY-2", SCANCMD_ACC, "hdd-tray-2" },
        { "ACC-X", SCANCMD_ACC, "x" },
        { "ACC-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", SCANCMD_ACC, "abcdefghijklmnopqrstuvwxyz012345" },
        { "CMP-BATTERY", SCANCMD_CMP, "battery" },
        { "cmp-electrical", SCANCMD_CMP, "electrical" },
        { "Cmp-Mechanical", SCANCMD_CMP, "mechanical" },
        { "CMP-LAMP", SCANCMD_CMP, "lamp" },
        { "CMP-PSU_12V", SCANCMD_CMP, "psu_12v" },
    };
    for (size_t i = 0; i < N_ELEMS(ok); i++) {
        scancmd_t cmd;
        const char *reason = NULL;
        CU_ASSERT_EQUAL(scancmd_parse(ok[i].text, &cmd, &reason), 1);
        CU_ASSERT_EQUAL(cmd.kind, ok[i].kind);
        CU_ASSERT_STRING_EQUAL(cmd.name, ok[i].name);
    }
}

static void test_invalid(void)
{
    const struct {
        const char *text, *why;
    } bad[] = {
        { "FIND-BANANA", "unknown finding \"BANANA\"" },
        { "FIND-", "FIND- without a finding" },
        { "FIND-COSMETIC-DAMAGE", "unknown finding \"COSMETIC-DAMAGE\"" },
        { "FIND-WEAR ", "unknown finding \"WEAR \"" },
        { "find-\x1d" "01", "unknown finding \"?01\"" },
        { "ACC-", "ACC- without a name" },
        { "CMP-", "CMP- without a name" },
        { "ACC-POWER SUPPLY",
          "ACC- name \"POWER SUPPLY\" may hold only letters, digits, '_' and '-'" },
        { "CMP-BATT.ERY", "CMP- name \"BATT.ERY\" may hold only letters, digits, '_' and '-'" },
        { "CMP-K\xc3\xbchler", "CMP- name \"K??hler\" may hold only letters, digits, '_' and '-'" },
        { "ACC-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "ACC- name longer than 32 characters" },
        { "PKG-FOO", "unknown command \"PKG-FOO\" (PKG-ORIGINAL, PKG-REPLACEMENT, PKG-NONE, "
                     "PKG-UNMARKED)" },
        { "PKG-", "unknown command \"PKG-\" (PKG-ORIGINAL, PKG-REPLACEMENT, PKG-NONE, "
                  "PKG-UNMARKED)" },
        { "CMD-DONE ", "unknown command \"CMD-DONE \" (CMD-DONE, CMD-CANCEL, CMD-REPRINT, "
                       "CMD-NORMA)" },
        { "CMD-FINISH", "unknown command \"CMD-FINISH\" (CMD-DONE, CMD-CANCEL, CMD-REPRINT, "
                        "CMD-NORMA)" },
        { "FAULT-NO_FAULT_FOUND", "unknown command \"FAULT-NO_FAULT_FOUND\" (FAULT-CONFIRMED, "
                                  "FAULT-NFF, FAULT-DOA, FAULT-UNTESTED)" },
        { "SEAL-OPEN", "unknown command \"SEAL-OPEN\" (SEAL-INTACT, SEAL-BROKEN)" },
        { "FOAM-PRESENT", "unknown command \"FOAM-PRESENT\" (FOAM-MISSING)" },
        { "SERIAL-OK", "unknown command \"SERIAL-OK\" (SERIAL-DAMAGED, SERIAL-REMOVED)" },
        { "PKG-ORIGINAL-X", "unknown command \"PKG-ORIGINAL-X\" (PKG-ORIGINAL, "
                            "PKG-REPLACEMENT, PKG-NONE, PKG-UNMARKED)" },
        { "CMD-ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOP",
          "unknown command \"CMD-ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ...\" (CMD-DONE, "
          "CMD-CANCEL, CMD-REPRINT, CMD-NORMA)" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        scancmd_t cmd = { .kind = SCANCMD_NORMA, .name = "keep" };
        const char *reason = NULL;
        CU_ASSERT_EQUAL(scancmd_parse(bad[i].text, &cmd, &reason), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(reason);
        if (strcmp(reason, bad[i].why) != 0)
            fprintf(stderr, "\n  %s: got \"%s\"\n", bad[i].text, reason);
        CU_ASSERT_STRING_EQUAL(reason, bad[i].why);
        CU_ASSERT_EQUAL(cmd.kind, SCANCMD_NORMA);
        CU_ASSERT_STRING_EQUAL(cmd.name, "keep");
    }
}

static void test_not_commands(void)
{
    const char *others[] = { "RMA-12345", "RMA12345", "SN12345678", "", "PKG", "PKGORIGINAL",
                             "CMD", "CMDDONE", "-CMD-DONE", " CMD-DONE", "\x1d" "0109506000134352",
                             "0109506000134352", "ACCESSORY-1", "FINDING-WEAR", "CMP_BATTERY",
                             "FAULTY", "SERIAL", "SERIALNO-1", "4006381333931" };
    for (size_t i = 0; i < N_ELEMS(others); i++) {
        scancmd_t cmd = { .kind = SCANCMD_NORMA };
        const char *reason = NULL;
        CU_ASSERT_EQUAL(scancmd_parse(others[i], &cmd, &reason), 0);
        CU_ASSERT_EQUAL(cmd.kind, SCANCMD_NORMA);
        CU_ASSERT_PTR_NULL(reason);
    }
    scancmd_t cmd;
    const char *reason = NULL;
    CU_ASSERT_EQUAL(scancmd_parse(NULL, &cmd, &reason), 0);
}

static void test_table(void)
{
    size_t n = 0;
    const scancmd_info_t *t = scancmd_table(&n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* 19 fixed (ACC-ALL, ACC-NONE among them) + 16 findings + 4 components; single
     * accessories are on the vendors' accessory sheets. */
    CU_ASSERT_EQUAL(n, N_ELEMS(fixed) + FINDING__COUNT + 4);

    int seen_fixed[N_ELEMS(fixed)] = { 0 }, seen_finding[FINDING__COUNT] = { 0 };
    int acc = 0, cmp = 0;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(t[i].barcode);
        CU_ASSERT_PTR_NOT_NULL(t[i].section);
        CU_ASSERT_PTR_NOT_NULL(t[i].meaning);
        CU_ASSERT(t[i].meaning && strlen(t[i].meaning) > 5);
        /* Barcodes are printed in capitals. */
        for (const char *c = t[i].barcode; *c; c++)
            CU_ASSERT(!islower((unsigned char)*c));
        /* Every row parses back to its own kind. */
        scancmd_t cmd;
        const char *reason = NULL;
        CU_ASSERT_EQUAL(scancmd_parse(t[i].barcode, &cmd, &reason), 1);
        CU_ASSERT_EQUAL(cmd.kind, t[i].kind);
        for (size_t k = 0; k < N_ELEMS(fixed); k++)
            if (strcmp(fixed[k].text, t[i].barcode) == 0) {
                seen_fixed[k]++;
                CU_ASSERT_EQUAL(fixed[k].kind, t[i].kind);
            }
        if (t[i].kind == SCANCMD_FIND) {
            seen_finding[cmd.finding]++;
            CU_ASSERT_STRING_EQUAL(t[i].section, "Findings");
            CU_ASSERT_PTR_NOT_NULL(strstr(t[i].meaning, finding_description(cmd.finding)));
        }
        acc += t[i].kind == SCANCMD_ACC;
        cmp += t[i].kind == SCANCMD_CMP;
        /* No barcode twice. */
        for (size_t k = 0; k < i; k++)
            CU_ASSERT(strcmp(t[k].barcode, t[i].barcode) != 0);
    }
    for (size_t k = 0; k < N_ELEMS(fixed); k++)
        CU_ASSERT_EQUAL(seen_fixed[k], 1);
    for (int k = 0; k < FINDING__COUNT; k++)
        CU_ASSERT_EQUAL(seen_finding[k], 1);
    CU_ASSERT_EQUAL(acc, 0);
    CU_ASSERT_EQUAL(cmp, 4);

    const char *components[] = { "CMP-BATTERY", "CMP-ELECTRICAL", "CMP-MECHANICAL", "CMP-LAMP",
                                 "FIND-COSMETIC_DAMAGE", "FIND-TRANSIT_DAMAGE" };
    for (size_t k = 0; k < N_ELEMS(components); k++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found += strcmp(t[i].barcode, components[k]) == 0;
        CU_ASSERT_EQUAL(found, 1);
    }
}

int suite_scancmd(void)
{
    CU_pSuite s = CU_add_suite("scancmd", NULL, NULL);
    if (!s || !CU_add_test(s, "fixed commands, any case", test_fixed_commands) ||
        !CU_add_test(s, "every finding, FIND-<finding>", test_findings) ||
        !CU_add_test(s, "ACC-<name>, CMP-<component>", test_acc_cmp) ||
        !CU_add_test(s, "invalid commands give reasons", test_invalid) ||
        !CU_add_test(s, "other scans are not commands", test_not_commands) ||
        !CU_add_test(s, "the command table", test_table))
        return -1;
    return 0;
}
