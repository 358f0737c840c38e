/*
 * Which line a unit is, from the RMA's lines as stored (daemon/units.h).
 */
#include "daemon/units.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What one walk over the lines collects. */
typedef struct {
    int with_room, first_room;          /* lines with units still to come */
    int unlisted_room, first_unlisted;  /* of them, lines without a serial list */
    int model_line;                     /* the line with room whose model matched */
    const char *model;                  /* to match, or NULL */
    int want_line;                      /* a line to report on */
    int want_room;                      /* 1 when want_line has room */
    FILE *names;                        /* "model (line N), ..." when not NULL */
} walk_t;

static int visit(const db_rma_t *r, void *data)
{
    walk_t *w = data;
    bool room = r->line_received < r->quantity;

    if (r->line == w->want_line)
        w->want_room = room;
    if (!room)
        return 0;
    if (w->with_room++ == 0)
        w->first_room = r->line;
    if (!r->expected_serials[0] && w->unlisted_room++ == 0)
        w->first_unlisted = r->line;
    if (w->model && r->model[0] && strcasecmp(r->model, w->model) == 0 && !w->model_line)
        w->model_line = r->line;
    if (w->names)
        fprintf(w->names, "%s%s (line %d)", w->with_room > 1 ? ", " : "",
                r->model[0] ? r->model : "no model", r->line);
    return 0;
}

static int walk(db_t *db, const char *number, walk_t *w)
{
    return db_rma_foreach_line(db, number, visit, w);
}

int units_line_at_open(db_t *db, const char *number, int *line)
{
    walk_t w = { 0 };
    int r = walk(db, number, &w);

    if (r < 0)
        return r;
    if (w.with_room == 0)
        return -ENOSPC;
    *line = w.with_room == 1 ? w.first_room : 0;
    return 0;
}

int units_for_serial(db_t *db, const char *number, int open_line, const char *serial,
                     units_serial_t *out)
{
    units_serial_t u = { .line = open_line, .match = -1 };
    walk_t w = { 0 };
    int r = db_rma_serial_received(db, number, serial, &u.received_in);

    if (r < 0 && r != -ENOENT)
        return r;
    r = db_rma_serial_line(db, number, serial, &u.listed_on);
    if (r < 0 && r != -ENOENT)
        return r;
    w.want_line = u.listed_on;
    if ((r = walk(db, number, &w)) < 0)
        return r;

    if (open_line) {
        db_rma_t *row = malloc(sizeof(*row));
        if (!row)
            return -ENOMEM;
        r = db_rma_get_line(db, number, open_line, row);
        bool listed = r == 0 && row->expected_serials[0];
        free(row);
        if (r < 0 && r != -ENOENT)
            return r;
        if (u.listed_on)
            u.match = u.listed_on == open_line;
        else
            u.match = listed ? 0 : -1;
    } else if (u.listed_on && w.want_room) {
        u.line = u.listed_on, u.match = 1;
    } else if (!u.listed_on && w.unlisted_room == 1) {
        u.line = w.first_unlisted;   /* the one line that lists no serials */
    } else if (!u.listed_on && w.unlisted_room > 1) {
        u.line = 0;                  /* the model tells which */
    } else {
        /* Listed on a line that is complete, or unlisted where every line with room
         * lists its serials: not a unit this RMA expects. It counts on a line with
         * room and is held for a person. */
        u.line = w.first_room;
        u.match = 0;
    }
    *out = u;
    return 0;
}

int units_line_by_model(db_t *db, const char *number, const char *text, int *line)
{
    walk_t w = { .model = text };
    int r = walk(db, number, &w);

    if (r < 0)
        return r;
    if (!w.model_line)
        return -ENOENT;
    *line = w.model_line;
    return 0;
}

char *units_lines_with_room(db_t *db, const char *number)
{
    char *text = NULL;
    size_t len = 0;
    walk_t w = { 0 };

    if (!(w.names = open_memstream(&text, &len)))
        return NULL;
    int r = walk(db, number, &w);
    if (fclose(w.names) != 0 || r < 0) {
        free(text);
        return NULL;
    }
    return text;
}

void units_case_expected(const db_rma_t *line_row, const units_serial_t *u, const char *serial,
                         char *out, size_t cap)
{
    if (u->match == 1)
        snprintf(out, cap, "%s", serial);
    else if (u->match < 0)
        snprintf(out, cap, "%s", "");
    else if (line_row->expected_serials[0] && strlen(line_row->expected_serials) < cap)
        snprintf(out, cap, "%s", line_row->expected_serials);
    else if (line_row->expected_serials[0])
        snprintf(out, cap, "one of the serials of line %d", line_row->line);
    else if (u->listed_on)
        snprintf(out, cap, "a unit of line %d; %s is listed on line %d", line_row->line, serial,
                 u->listed_on);
    else
        snprintf(out, cap, "a serial listed on the RMA");
}
