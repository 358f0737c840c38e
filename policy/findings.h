/*
 * Findings: what an inspector can state about a returned unit, the closed list of the
 * policy contract (spec policy-eval, "Findings"). This is the one list: the policy
 * engine reads findings from a case, the stations from FIND-<finding> command barcodes
 * (policy/scancmd.h), and labels and command sheets print them.
 */
#ifndef RMAD_FINDINGS_H
#define RMAD_FINDINGS_H

/*
 * X(ENUM_SUFFIX, contract_name, "words for people"), in the contract's order. Other
 * tables that need one row per finding (the command barcodes) expand this list, so a
 * finding added here appears everywhere.
 */
#define RMAD_FINDINGS(X)                                                               \
    X(COSMETIC_DAMAGE, cosmetic_damage, "cosmetic damage")                             \
    X(PHYSICAL_DAMAGE, physical_damage, "physical damage")                             \
    X(LIQUID_DAMAGE, liquid_damage, "liquid damage")                                   \
    X(ELECTRICAL_DAMAGE, electrical_damage,                                            \
      "electrical damage (lightning, surge, wrong voltage)")                           \
    X(ACT_OF_GOD, act_of_god, "act of God (fire, flood, earthquake)")                  \
    X(TAMPERED, tampered, "tampered with")                                             \
    X(MODIFIED, modified, "modified")                                                  \
    X(IMPROPER_INSTALL, improper_install, "improper installation")                     \
    X(MISHANDLED, mishandled, "mishandled")                                            \
    X(WEAR, wear, "wear")                                                              \
    X(NON_VENDOR_PARTS, non_vendor_parts, "non-vendor parts")                          \
    X(OPENED, opened, "opened")                                                        \
    X(LICENSE_ACTIVATED, license_activated, "license activated")                       \
    X(MISSING_PARTS, missing_parts, "missing parts")                                   \
    X(WRONG_PRODUCT, wrong_product, "wrong product")                                   \
    X(TRANSIT_DAMAGE, transit_damage, "transit damage")

#define RMAD_FINDING_ENUM(upper, lower, text) FINDING_##upper,
typedef enum { RMAD_FINDINGS(RMAD_FINDING_ENUM) FINDING__COUNT } finding_t;
#undef RMAD_FINDING_ENUM

/* The contract names, lowercase ("cosmetic_damage"), indexed by finding_t. */
extern const char *const finding_names[FINDING__COUNT];

/* The contract name of f, or NULL when f is not a finding. Static storage. */
const char *finding_name(finding_t f);

/*
 * The finding in words for people (command sheets, labels): "act of God (fire, flood,
 * earthquake)". NULL when f is not a finding. Static storage.
 */
const char *finding_description(finding_t f);

/*
 * The finding named `name`, compared case-insensitively ("COSMETIC_DAMAGE" is
 * cosmetic_damage). Returns 0 and sets *out, or -EINVAL (also for NULL or "") and
 * leaves *out untouched. Only the contract spelling: '-' for '_' is not accepted.
 */
int finding_parse(const char *name, finding_t *out);

#endif
