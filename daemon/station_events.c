/*
 * The fields of the station's events (daemon/station_events.h).
 */
#include "daemon/station_events.h"

#include <string.h>

#include "policy/policy.h"

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

json_t *station_ev_scan(const char *scanner, const char *kind, const char *aim, const char *text,
                        const char *reason, const char *message, const char *next)
{
    json_t *o = json_pack("{s:s, s:s}", "scanner", scanner, "kind", kind);
    if (!o)
        return NULL;
    int bad = 0;
    if (aim && *aim)
        bad |= json_object_set_new(o, "symbology", json_string(aim));
    if (text)
        bad |= json_object_set_new(o, "text", json_string(text));
    if (reason)
        bad |= json_object_set_new(o, "reason", json_string(reason));
    /* Issue 10: the station's answer, for any screen (docs/station.md, "Replies"). */
    if (message)
        bad |= json_object_set_new(o, "message", json_string(message));
    if (next)
        bad |= json_object_set_new(o, "next", json_string(next));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *station_ev_opened(const char *number, const char *vendor, const char *model, int line)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "rma", checklist_jstr(number),
                     "vendor", checklist_jstr(nonempty(vendor)),
                     "model", checklist_jstr(line ? nonempty(model) : NULL),
                     "line", line ? json_integer(line) : json_null());
}

/* {"received": k, "authorised": n} (issue 11), null without an RMA. */
static json_t *progress(const db_rma_t *rma, int received)
{
    return rma ? json_pack("{s:i, s:i}", "received", received, "authorised", rma->authorised)
               : json_null();
}

json_t *station_ev_refused(const char *number, const char *reason, const db_rma_t *rma)
{
    /* A refused unit is no unit of any line: line null, the RMA's progress as it is. */
    return json_pack("{s:s, s:s, s:n, s:o}", "rma", number, "reason", reason, "line",
                     "progress", progress(rma, rma ? rma->received : 0));
}

json_t *station_ev_cancelled(const char *number, const char *switched_to)
{
    return switched_to ? json_pack("{s:o, s:s}", "rma", checklist_jstr(number), "switched_to",
                                   switched_to)
                       : json_pack("{s:o}", "rma", checklist_jstr(number));
}

/* The inspection.completed event's checklist (spec events). */
static json_t *event_checklist(const checklist_t *c, const char *const *missing, size_t n_missing)
{
    return json_pack("{s:s, s:b, s:s, s:o, s:o, s:o, s:s, s:o, s:s, s:b}",
                     "packaging", ENUM_PACKAGING.names[c->packaging],
                     "foam", c->foam,
                     "seal", ENUM_SEAL.names[c->seal],
                     "accessories_present", checklist_jnames((const char *const *)c->acc, c->n_acc),
                     "accessories_missing", checklist_jnames(missing, n_missing),
                     "findings", checklist_jfindings_of(c),
                     "fault", ENUM_FAULT.names[c->fault],
                     "component", checklist_jstr(c->component),
                     "serial_label", ENUM_SERIAL_LABEL.names[c->serial_label],
                     "rma_marked_on_package", c->rma_marked);
}

json_t *station_ev_completed(const char *number, const db_rma_t *rma, int received,
                             const char *serial, int serial_match, const checklist_t *c,
                             const char *const *missing, size_t n_missing)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "rma", checklist_jstr(number),
                     "vendor", checklist_jstr(rma ? nonempty(rma->vendor) : NULL),
                     "model", checklist_jstr(rma ? nonempty(rma->model) : NULL),
                     "line", rma ? json_integer(rma->line) : json_null(),
                     "progress", progress(rma, received),
                     "serial", checklist_jstr(serial),
                     "serial_match", checklist_jtristate(rma ? serial_match : -1),
                     "checklist", event_checklist(c, missing, n_missing));
}

json_t *station_ev_rma_received(const db_rma_t *rma)
{
    return json_pack("{s:s, s:i, s:i}", "rma", rma->number, "lines", rma->lines, "authorised",
                     rma->authorised);
}
