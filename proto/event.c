/* The event envelope (spec events). */
#include "proto/event.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/caldate.h"

bool event_topic_valid(const char *topic)
{
    if (!topic)
        return false;
    size_t n = strlen(topic);
    if (n == 0 || n > EVENT_TOPIC_MAX || topic[0] == '.' || topic[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = topic[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

int event_time_format(int64_t time_ms, char buf[EVENT_TIME_STRLEN])
{
    buf[0] = '\0';
    if (time_ms < 0 || time_ms > EVENT_TIME_MAX_MS)
        return -ERANGE;
    /* Day numbers, not gmtime(): no time_t range or time zone to think about, and
     * the same calendar as every date rmad writes. */
    int64_t day = time_ms / 86400000, rem = time_ms % 86400000;
    int y, m, d;
    caldate_to_ymd((caldate_t)day, &y, &m, &d);
    char tmp[64];   /* room for any int, so the compiler sees no truncation */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    memcpy(buf, tmp, EVENT_TIME_STRLEN - 1);
    buf[EVENT_TIME_STRLEN - 1] = '\0';
    return 0;
}

json_t *event_new(const char *topic, uint64_t seq, int64_t time_ms, const char *station,
                  int64_t receipt)
{
    char when[EVENT_TIME_STRLEN];

    if (!event_topic_valid(topic) || seq == 0 || seq > (uint64_t)INT64_MAX || receipt < 0 ||
        (station && !*station) || event_time_format(time_ms, when) < 0)
        return NULL;
    json_t *ev = json_object();
    if (!ev)
        return NULL;
    /* Insertion order is dump order (jansson >= 2.8): the envelope reads first. */
    int bad = json_object_set_new(ev, "v", json_integer(EVENT_VERSION)) < 0 ||
              json_object_set_new(ev, "seq", json_integer((json_int_t)seq)) < 0 ||
              json_object_set_new(ev, "type", json_string(topic)) < 0 ||
              json_object_set_new(ev, "time", json_string(when)) < 0;
    if (!bad && station)
        bad = json_object_set_new(ev, "station", json_string(station)) < 0;
    if (!bad && receipt)
        bad = json_object_set_new(ev, "receipt", json_integer((json_int_t)receipt)) < 0;
    if (bad) {
        /* json_string() fails on a station name that is not UTF-8, too. */
        json_decref(ev);
        return NULL;
    }
    return ev;
}

char *event_dump(const json_t *ev)
{
    if (!json_is_object(ev))
        return NULL;
    return json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
