/*
 * The event envelope (spec events, "Every body has"): the JSON object of frame 2 of
 * every event the daemon publishes. event_new() builds the fields every event has;
 * the caller adds the topic's own fields (reason, rma, ...) and dumps it once with
 * event_dump(), and that text is both what the outbox stores and what is published,
 * so a replayed event is byte for byte the live one.
 */
#ifndef RMAD_PROTO_EVENT_H
#define RMAD_PROTO_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Schema version of the envelope ("v"). */
#define EVENT_VERSION 1

/* Longest topic: the outbox table's CHECK (length(topic) BETWEEN 1 AND 64). */
#define EVENT_TOPIC_MAX 64

/* "2026-11-21T09:30:00.123Z" plus NUL. */
#define EVENT_TIME_STRLEN 25

/* Latest time an envelope can carry: 9999-12-31T23:59:59.999Z (RFC 3339 has 4-digit years). */
#define EVENT_TIME_MAX_MS INT64_C(253402300799999)

/*
 * Whether `topic` can name an event: 1..EVENT_TOPIC_MAX bytes of [a-z0-9_.-],
 * neither starting nor ending with '.'. (Subscribers filter on topic prefixes, so a
 * topic is a plain dotted name.)
 */
bool event_topic_valid(const char *topic);

/*
 * Format Unix milliseconds as RFC 3339 UTC with milliseconds,
 * "2026-11-21T09:30:00.123Z". Returns 0, or -ERANGE outside 0..EVENT_TIME_MAX_MS
 * (buf then holds "").
 */
int event_time_format(int64_t time_ms, char buf[EVENT_TIME_STRLEN]);

/*
 * A new envelope, in this key order: v (1), seq, type (= topic), time, then station
 * when not NULL and receipt when not 0. The caller adds its fields and owns the
 * returned reference (json_decref).
 *
 * Returns NULL when the topic is not valid (event_topic_valid), seq is 0 or beyond
 * INT64_MAX (the envelope's seq starts at 1 and is stored as a SQLite integer),
 * time_ms is out of range (event_time_format), station is "", receipt is negative,
 * or memory runs out.
 */
json_t *event_new(const char *topic, uint64_t seq, int64_t time_ms, const char *station,
                  int64_t receipt);

/*
 * The event as compact JSON text (no spaces, keys in insertion order, UTF-8 as is):
 * malloc'd, caller frees. NULL when ev is not an object or memory runs out.
 */
char *event_dump(const json_t *ev);

#endif
