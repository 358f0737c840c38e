/*
 * Scans: what every scanner driver produces, and the decoding the drivers share.
 *
 * A driver cuts its input into one scan per barcode read (a line, a HID report
 * sequence) and hands the bytes to scan_decode(), which treats them as untrusted
 * (spec station, "Scanner inputs"): over-long, empty, control bytes, invalid UTF-8 are
 * rejected with a reason, never truncated or repaired. A leading AIM symbology
 * identifier ("]C1") is split off; EAN/UPC scans have their check digit verified. The
 * driver then stamps the scan with its scanner id and the loop's clock.
 *
 * GS1 element strings (the payload of GS1-128, GS1 DataMatrix, GS1 QR, GS1 DataBar)
 * are parsed separately by gs1_parse(), when the station classifies the scan.
 *
 * Reasons: functions that reject input set `*reason` to a one-line English message.
 * It is either a string literal or a per-thread buffer of this module that holds
 * until the next call into this module on the same thread; the caller never frees it
 * and copies it if it must keep it. (The daemon runs every driver on the loop's one
 * thread and logs or stores the reason at once.)
 */
#ifndef RMAD_SCAN_H
#define RMAD_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/caldate.h"

/* The contract's default limit on one scan: its bytes without the CR/LF terminator. */
#define SCAN_MAX_LEN_DEFAULT 512

/* ASCII GS, the GS1 field separator (FNC1 as transmitted by scanners). */
#define SCAN_GS 0x1D

typedef struct {
    size_t max_len;     /* longest accepted scan in bytes; 0 = SCAN_MAX_LEN_DEFAULT */
} scan_limits_t;

/*
 * One decoded scan. The strings are owned by the scan: scan_clear() frees them. A
 * zero-initialised scan_t is empty and may be cleared.
 */
typedef struct {
    char *text;             /* the data: no AIM id, no CR/LF terminator; NUL-terminated */
    size_t len;             /* bytes in text; text holds no NUL but may hold GS (GS1) */
    uint8_t *raw;           /* the bytes exactly as the driver passed them (audit trail) */
    size_t raw_len;
    char aim[4];            /* AIM symbology identifier "]C1", or "" when none was sent */
    const char *symbology;  /* "GS1-128", "EAN-13", ...; "unknown" without AIM id. Static */
    bool gs1;               /* text is a GS1 element string (GS1 AIM id or leading GS) */
    char *scanner;          /* scanner id set by the driver, "tcp:127.0.0.1:7790#3"; or NULL */
    int64_t t_ms;           /* loop_now_ms() when the driver read it; set by the driver */
} scan_t;

/*
 * Decode the bytes of one read. A trailing run of CR/LF (the line terminator, if the
 * driver left it on) is stripped; what remains (AIM id included) must be at most
 * max_len bytes of UTF-8 without control characters (C0, DEL, C1), except GS when the
 * scan is GS1 data: the AIM id is a GS1 one (]C1 ]d2 ]Q3 ]e0) or the data starts with
 * GS. The data after the AIM id must not be empty.
 *
 * A leading ']' is always an AIM id: ']', a letter, a modifier [0-9A-Za-z]. EAN/UPC
 * ids have their data checked: ]E0 12 or 13 digits (UPC-A, EAN-13) or 8 (UPC-E),
 * ]E3 13 + 2 or 5 add-on digits, ]E4 8 digits (EAN-8), ]E1/]E2 2/5 add-on digits.
 *
 * Offsets in reasons count bytes of `raw` from 0. lim may be NULL (defaults).
 *
 * Returns 0 and fills *out (scanner NULL, t_ms 0: the driver sets them), -EMSGSIZE
 * (longer than the limit), -EINVAL (anything else invalid; *reason set), or -ENOMEM.
 * On failure *out is untouched. Cost: one pass over raw, two allocations.
 */
int scan_decode(const uint8_t *raw, size_t len, const scan_limits_t *lim, scan_t *out,
                const char **reason);

/* Set the scanner id (copied) and the read time. Returns 0 or -ENOMEM. */
int scan_set_source(scan_t *scan, const char *scanner_id, int64_t t_ms);

/* Free what the scan owns and zero it. Accepts NULL and cleared scans. */
void scan_clear(scan_t *scan);

/*
 * The human name of an AIM id ("]C1" -> "GS1-128", "]A0" -> "Code 39"). An id of
 * valid form naming no symbology known here gives "unknown symbology"; NULL or "" gives
 * "unknown". Static storage.
 */
const char *scan_symbology_name(const char *aim);

/* Whether the AIM id announces a GS1 element string: ]C1, ]d2, ]Q3, ]e0. */
bool scan_aim_is_gs1(const char *aim);

/* ---- GTIN / GS1 check digits ------------------------------------------------------ */

/*
 * The GS1 mod-10 check digit for the n data digits at s (the check digit itself not
 * included): weights 3,1,3,... from the rightmost data digit. The same rule serves
 * EAN-8, UPC-A, EAN-13, GTIN-14 and SSCC. Returns 0..9, or -EINVAL when a byte is
 * not a digit or n is 0.
 */
int gs1_check_digit(const char *s, size_t n);

/*
 * Validate a whole code whose last digit is its check digit: 8 (EAN-8), 12 (UPC-A),
 * 13 (EAN-13), 14 (GTIN-14) or 18 (SSCC) digits. Returns 0, or -EINVAL with reason
 * ("EAN-13 check digit is 3, expected 7", "GTIN has a non-digit at position 5", or a
 * wrong length). The name in the reason follows the length.
 */
int gtin_validate(const char *s, size_t len, const char **reason);

/* ---- GS1 element strings ----------------------------------------------------------- */

/* Which fields of gs1_t were present (bits of gs1_t.present). */
enum {
    GS1_SSCC = 1u << 0,             /* (00) */
    GS1_GTIN = 1u << 1,             /* (01) */
    GS1_CONTENT = 1u << 2,          /* (02) GTIN of contained trade items */
    GS1_BATCH = 1u << 3,            /* (10) */
    GS1_PROD_DATE = 1u << 4,        /* (11) */
    GS1_PACK_DATE = 1u << 5,        /* (13) */
    GS1_BEST_BEFORE = 1u << 6,      /* (15) */
    GS1_SELL_BY = 1u << 7,          /* (16) */
    GS1_EXPIRY = 1u << 8,           /* (17) */
    GS1_SERIAL = 1u << 9,           /* (21) */
    GS1_ADDITIONAL_ID = 1u << 10,   /* (240) */
    GS1_SECONDARY_SERIAL = 1u << 11 /* (250) */
};

typedef struct {
    unsigned present;          /* GS1_* bits */
    unsigned day_unspecified;  /* GS1_* date bits whose YYMMDD had DD = 00 */
    char sscc[19];             /* 18 digits, check digit verified */
    char gtin[15];             /* 14 digits, check digit verified */
    char content[15];          /* 14 digits, check digit verified */
    char batch[21];            /* 1..20 characters of GS1 set 82 */
    char serial[21];           /* 1..20 characters of GS1 set 82 */
    char additional_id[31];    /* 1..30 characters of GS1 set 82 */
    char secondary_serial[31]; /* 1..30 characters of GS1 set 82 */
    /*
     * Dates, CALDATE_NONE when absent. DD = 00 ("day not given", allowed by GS1 for
     * all of these) gives the month's last day for (15), (16), (17) (GS1: the product
     * expires at the end of that month) and the month's first day for (11), (13); the
     * day_unspecified bit tells which dates were given that way.
     */
    caldate_t prod_date, pack_date, best_before, sell_by, expiry;
} gs1_t;

/*
 * Parse a GS1 element string: the data after a GS1 AIM id (]C1 ]d2 ]Q3 ]e0), or data
 * whose first byte is GS (FNC1 in first position, as keyboard-wedge and serial
 * scanners send it without AIM ids). One leading GS is skipped in either case.
 *
 * Known AIs: 00, 01, 02, 10, 11, 13, 15, 16, 17, 21, 240, 250. Any other AI is
 * rejected ("unsupported GS1 AI (3103)") rather than guessed at: AIs of unknown
 * length would make the rest of the string unsplittable. Fixed-length fields may be
 * followed by a GS; variable-length fields end at GS or at the end of data. A final GS
 * is tolerated. The same AI twice is accepted only with the same value.
 *
 * YY is placed in a century by the GS1 sliding window (General Specifications 7.12)
 * around ref_year: YY - (ref_year mod 100) from 51 to 99 is the previous century, from
 * -99 to -50 the next one, otherwise ref_year's century. gs1_parse() takes ref_year
 * from today's date (the receiving day); gs1_parse_at() takes it from the caller.
 *
 * Returns 0 and fills *out, or -EINVAL with reason ("GTIN check digit is 3, expected
 * 7", "(17) is not a valid date YYMMDD: 251301", "(21) longer than 20 characters").
 * Offsets in reasons count bytes of data from 0. On failure *out is untouched.
 */
int gs1_parse(const char *data, size_t len, gs1_t *out, const char **reason);
int gs1_parse_at(const char *data, size_t len, int ref_year, gs1_t *out,
                 const char **reason);

#endif
