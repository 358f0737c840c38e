/*
 * HID POS bar code scanners (USB HID Point of Sale Usage Tables 1.02, usage page 0x8C):
 * finding the Scanned Data Report in a HID report descriptor, and turning those
 * reports into scans. Pure data handling, no I/O: drivers/usb.c fetches the report
 * descriptor and the reports.
 *
 * What a HID POS scanner sends, per scan, is one or more input reports of one fixed
 * layout, which its report descriptor declares inside an Application collection of
 * page 0x8C (Bar Code Scanner 0x02, or Badge Reader 0x01, Dumb Scanner 0x03, Cordless
 * Base 0x04, Cradle 0x05). Honeywell (and Access-IS, and others following it) declare:
 *
 *     byte 0      Report ID 2
 *     byte 1      Byte Count (Generic Desktop 0x3B): data bytes in this report
 *     bytes 2..4  Symbology Identifier 1..3 (0x8C:0xFB..0xFD): the AIM id, "]d2"
 *     bytes 5..60 Decoded Data (0x8C:0xFE), 56 bytes, NUL padded
 *     bytes 61,62 vendor (Honeywell Code ID)
 *     byte 63     bit 0: Decode Data Continued (0x8C:0xFF): more reports follow
 *
 * The layout is never assumed: it is read from the descriptor, so any device whose
 * descriptor gives these usages as byte-aligned 8-bit fields is decoded. Supported:
 *   - Decoded Data (required): N >= 1 fields of 8 bits, byte aligned;
 *   - Symbology Identifier 1..3 (optional, all three or none): 8-bit, byte aligned;
 *     they must hold an AIM identifier (']', code, modifier) or three zero bytes (no
 *     identifier sent); anything else is refused, not guessed at;
 *   - Byte Count (optional): 8-bit, byte aligned; without it, the data ends at the
 *     first NUL (the padding; a NUL can never be part of a valid scan);
 *   - Decode Data Continued (optional): one bit; without it every report is a scan.
 * All of them in the same input report (same Report ID) as the Decoded Data. Output
 * fields for the beeper and LED are found too (hidpos_feedback_t), so the station's
 * answer can be signalled on scanners that declare them. A scan
 * spread over several reports takes its AIM id from the first; the later ones must
 * repeat it or send zeros.
 */
#ifndef RMAD_HIDPOS_H
#define RMAD_HIDPOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest report descriptor accepted (real scanners' are a few hundred bytes). */
#define HIDPOS_DESC_MAX 4096

/*
 * The beeper and LED a HID POS scanner may let the host drive (POS 1.02, page 0x8C:
 * Sound Good Read Beep 0x86, Sound Error Beep 0x85, Sound Not On File Beep 0x87, Good
 * Read LED 0x7D), as Output fields of one output report inside the scanner collection.
 * Setting a field to 1 asks for that signal. Bit offsets count the report as sent,
 * Report ID byte included; -1 = not declared. The first output report declaring any
 * of them is the one used; the same usages in other reports are ignored.
 */
typedef struct {
    bool found;
    uint8_t report_id;      /* 0: no Report ID byte */
    size_t report_len;      /* bytes, Report ID included */
    long good_bit, error_bit, not_on_file_bit, led_bit;
} hidpos_feedback_t;

/* Where the fields of the Scanned Data Report are. Offsets count bytes of the report
 * as it arrives, Report ID byte included. */
typedef struct {
    uint8_t report_id;      /* 0: the device numbers no reports (no ID byte) */
    size_t report_len;      /* bytes of the report, Report ID included */
    size_t data_off;        /* Decoded Data */
    size_t data_len;
    bool has_count;         /* Byte Count */
    size_t count_off;
    bool has_sym;           /* Symbology Identifier 1..3 */
    size_t sym_off[3];
    bool has_cont;          /* Decode Data Continued */
    size_t cont_bit;        /* bit offset in the report, Report ID included */
    uint8_t input_ids[32];  /* bitmap of every input Report ID the descriptor declares */
    hidpos_feedback_t fb;   /* output signals, when declared */
} hidpos_layout_t;

/*
 * Parse a report descriptor (len bytes at desc). Returns 0 and fills *out when it
 * declares a bar code scanner with a Scanned Data Report in a supported layout;
 * -ENOENT when it declares no bar code scanner (a keyboard, a mouse: not an error,
 * the caller looks elsewhere); -EINVAL with *reason when it is malformed or declares a
 * layout this module does not decode ("Decoded Data fields are 16 bits, not 8").
 * *out is set only on success. reason is a literal or a per-thread buffer valid until
 * the next call into this module (the scan.h convention). O(len).
 */
int hidpos_parse(const uint8_t *desc, size_t len, hidpos_layout_t *out, const char **reason);

/* What the station's answer asks the scanner to signal. */
typedef enum {
    HIDPOS_SIGNAL_GOOD,     /* good-read beep, and the good-read LED when declared */
    HIDPOS_SIGNAL_ERROR,    /* error beep, or else the not-on-file beep */
} hidpos_signal_t;

/*
 * The output report that signals sig (layout from hidpos_parse), into buf of size
 * bytes: Report ID (when the layout has one), then the fields, all 0 but the ones
 * asked for, which are 1. Returns 0 and sets *len; -ENOTSUP when the descriptor
 * declares no field for sig; -ENOBUFS when size is too small.
 */
int hidpos_feedback_report(const hidpos_layout_t *lay, hidpos_signal_t sig, uint8_t *buf,
                           size_t size, size_t *len);

/* Reassembles scans from Scanned Data Reports. */
typedef struct hidpos hidpos_t;

/*
 * New decoder for layout (copied), assembling scans of at most max_len bytes, AIM id
 * included (0 = SCAN_MAX_LEN_DEFAULT). NULL when out of memory or layout is NULL.
 */
hidpos_t *hidpos_new(const hidpos_layout_t *layout, size_t max_len);

/* Accepts NULL; clears the pointer. A pending partial scan is dropped. */
void hidpos_destroy(hidpos_t **p);

/* What hidpos_feed made of a report. */
typedef enum {
    HIDPOS_MORE,    /* consumed: part of a scan that continues, or another input report
                       the descriptor declares (trigger, status), which carries no scan */
    HIDPOS_SCAN,    /* a scan is complete: *out, *out_len = AIM id + data */
    HIDPOS_BAD,     /* the report is refused, *reason says why; a partial scan before
                       it is still pending (take it with hidpos_take_partial) */
    HIDPOS_LONG,    /* the scan grew past max_len: *out, *out_len = its first max_len
                       bytes, reported once; its remaining reports are dropped */
} hidpos_result_t;

/*
 * Feed one input report as it arrived (len bytes, Report ID first when the layout
 * has one). *out stays valid until the next call on p. reason as for hidpos_parse.
 * Never reads outside report[0..len). O(len).
 */
hidpos_result_t hidpos_feed(hidpos_t *p, const uint8_t *report, size_t len,
                            const uint8_t **out, size_t *out_len, const char **reason);

/* Whether a scan has started and waits for its final report (drivers time it out). */
bool hidpos_pending(const hidpos_t *p);

/*
 * End a pending scan without its final report (a timeout, a bad report, an unplug):
 * the decoder is empty again, and *out, *out_len = what arrived of the scan (valid
 * until the next call on p). Returns false, with nothing set, when there is nothing
 * to report: no scan was pending, or it was already reported as too long.
 */
bool hidpos_take_partial(hidpos_t *p, const uint8_t **out, size_t *out_len);

#endif
