/*
 * What rmad's own labels encode (docs/labels.md, docs/station.md "rmad's own
 * barcodes"): the receipt barcode (Code 128) and the DataMatrix. Kept in one place so
 * the labels that print them and the stations that must recognise them when they are
 * scanned back cannot drift apart: a label's barcode read at a station is never taken
 * for a unit's serial or accessory.
 *
 *   receipt barcode   RCPT-000012                     (RCPT- and at least 6 digits)
 *   DataMatrix        RMAD RCPT-000012 RMA:<rma> SN:<serial>   (parts left out when
 *                     unknown, each value %-encoded as the label writes it)
 *
 * Labels printed before this form carried the bare receipt id (indistinguishable from
 * a numeric serial, so not recognised) and a DataMatrix "RMA:<rma> SN:<serial>", which
 * is recognised, without a receipt id ("SN:<serial>" alone is not: units carry that).
 */
#ifndef RMAD_LABELCODE_H
#define RMAD_LABELCODE_H

#include <stddef.h>
#include <stdint.h>

#define LABELCODE_RECEIPT_PREFIX "RCPT-"
#define LABELCODE_DATAMATRIX_PREFIX "RMAD "
/* Longest receipt barcode: the prefix, 19 digits of an int64, NUL. */
#define LABELCODE_RECEIPT_MAX 25

/*
 * The receipt barcode of receipt id (> 0) into buf (LABELCODE_RECEIPT_MAX bytes):
 * "RCPT-000012". Returns 0, or -EINVAL for id <= 0.
 */
int labelcode_receipt(int64_t id, char buf[LABELCODE_RECEIPT_MAX]);

/*
 * Is this scanned text one of rmad's label barcodes? Returns 1 and sets *receipt to
 * the receipt id it names, or to 0 for an older DataMatrix without one; 0 when it is
 * not rmad's. Case-insensitive prefixes; nothing else is guessed.
 */
int labelcode_parse(const char *text, int64_t *receipt);

#endif
