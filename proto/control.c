/*
 * Control and replay messages (proto/control.h): parsing with every check a
 * server needs before it trusts a byte, the reply shapes rmactl reads, and the
 * ROUTER envelope.
 */
#include "proto/control.h"
#include "core/msgf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Set *errmsg (when errmsg is not NULL) and return err. */
static int fail(char **errmsg, int err, char *msg)
{
    if (errmsg)
        *errmsg = msg;
    else
        free(msg);
    return err;
}

/*
 * Parse a JSON object from untrusted bytes. jansson checks UTF-8 and, with these
 * flags, rejects duplicate keys, trailing data and \u0000 inside strings.
 */
static json_t *parse_object(const void *buf, size_t len, char **errmsg)
{
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        /* jansson's text quotes a bit of the input: keep it only when it is UTF-8. */
        json_t *probe = json_string(je.text);
        if (probe)
            *errmsg = msgf("not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
        else
            *errmsg = msgf("not valid JSON (line %d, column %d)", je.line, je.column);
        json_decref(probe);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *errmsg = msgf("expected a JSON object");
        return NULL;
    }
    return j;
}

/* --------------------------------------------------------- control requests --- */

size_t control_request_max(const char *cmd)
{
    return cmd && strcmp(cmd, "rma.import") == 0 ? CONTROL_IMPORT_MAX : CONTROL_REQUEST_MAX;
}

bool control_cmd_valid(const char *s, size_t len)
{
    if (len == 0 || len > CONTROL_CMD_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

/*
 * The length is checked before anything is parsed: at most CONTROL_IMPORT_MAX for
 * any frame, and a frame above CONTROL_REQUEST_MAX must turn out to be rma.import.
 * Parsing such a frame first costs at most one pass over 16 MiB.
 */
int control_request_parse(const void *buf, size_t len, json_t **req, const char **cmd,
                          char **errmsg)
{
    char *msg = NULL;

    *errmsg = NULL;
    if (len > CONTROL_IMPORT_MAX)
        return fail(errmsg, -EMSGSIZE, msgf("request too large (%zu bytes, at most %u)", len,
                                            CONTROL_IMPORT_MAX));
    if (len == 0)
        return fail(errmsg, -EINVAL, msgf("empty request: expected a JSON object"));
    json_t *j = parse_object(buf, len, &msg);
    if (!j)
        return fail(errmsg, -EINVAL, msg);
    json_t *c = json_object_get(j, "cmd");
    if (!c) {
        json_decref(j);
        return fail(errmsg, -EINVAL, msgf("cmd: required field missing"));
    }
    if (!json_is_string(c) || !control_cmd_valid(json_string_value(c), json_string_length(c))) {
        json_decref(j);
        return fail(errmsg, -EINVAL, msgf("cmd: expected a command name"));
    }
    const char *name = json_string_value(c);
    if (len > control_request_max(name)) {
        char *m = msgf("request too large (%zu bytes, at most %u for %s)", len,
                       CONTROL_REQUEST_MAX, name);
        json_decref(j);                     /* name lives in j: format first */
        return fail(errmsg, -EMSGSIZE, m);
    }
    *req = j;
    *cmd = name;
    return 0;
}

json_t *control_request_new(const char *cmd)
{
    return json_pack("{s:s}", "cmd", cmd);
}

int control_check_keys(const json_t *req, const char *const *allowed, char **errmsg)
{
    const char *key;
    json_t *v;

    *errmsg = NULL;
    json_object_foreach((json_t *)req, key, v) {
        bool ok = strcmp(key, "cmd") == 0;
        for (const char *const *a = allowed; !ok && a && *a; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) {
            /* Keys came through jansson: valid UTF-8, but show only a short piece. */
            return fail(errmsg, -EINVAL, msgf("unknown field \"%.40s\"", key));
        }
    }
    return 0;
}

/* ---------------------------------------------------------- control replies ---- */

static const char *const code_names[] = {
    [CONTROL_BAD_REQUEST] = "bad_request",
    [CONTROL_INVALID] = "invalid",
    [CONTROL_BUSY] = "busy",
    [CONTROL_FAILED] = "failed",
};

const char *control_code_name(control_code_t code)
{
    return (unsigned)code < sizeof(code_names) / sizeof(code_names[0]) ? code_names[code]
                                                                      : "failed";
}

control_code_t control_code_for_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case EINVAL: case E2BIG: case EMSGSIZE: case ENOENT: case EEXIST: case EILSEQ:
    case ERANGE: case EALREADY: case EPERM:
        return CONTROL_INVALID;
    case EBUSY: case EAGAIN:
        return CONTROL_BUSY;
    default:
        return CONTROL_FAILED;
    }
}

/* Add every field of `fields` (consumed) to obj; returns obj, or NULL after freeing it. */
static json_t *merge(json_t *obj, json_t *fields)
{
    if (fields && (!json_is_object(fields) || json_object_update(obj, fields) < 0)) {
        json_decref(obj);
        obj = NULL;
    }
    json_decref(fields);
    return obj;
}

json_t *control_reply_ok(json_t *fields)
{
    json_t *obj = json_pack("{s:b}", "ok", 1);
    if (!obj) {
        json_decref(fields);
        return NULL;
    }
    if (fields && json_is_object(fields))
        json_object_del(fields, "ok");
    return merge(obj, fields);
}

json_t *control_reply_error(control_code_t code, const char *error, json_t *fields)
{
    json_t *e = json_string(error ? error : "");
    if (!e)
        e = json_string("internal error (message not valid UTF-8)");
    json_t *obj = e ? json_pack("{s:b,s:o,s:s}", "ok", 0, "error", e, "code",
                                control_code_name(code))
                    : NULL;
    if (!obj) {
        json_decref(fields);
        return NULL;
    }
    /* The fields may not replace what the reply is: ok, error, code. */
    if (fields && json_is_object(fields)) {
        json_object_del(fields, "ok");
        json_object_del(fields, "error");
        json_object_del(fields, "code");
    }
    return merge(obj, fields);
}

int control_reply_parse(const void *buf, size_t len, json_t **reply, char **errmsg)
{
    char *msg = NULL;

    *errmsg = NULL;
    json_t *j = parse_object(buf, len, &msg);
    if (!j)
        return fail(errmsg, -EBADMSG, msg);
    json_t *ok = json_object_get(j, "ok");
    if (!json_is_boolean(ok)) {
        json_decref(j);
        return fail(errmsg, -EBADMSG, msgf("reply without \"ok\""));
    }
    if (json_is_true(ok)) {
        *reply = j;
        return 0;
    }
    const char *e = json_string_value(json_object_get(j, "error"));
    *reply = j;
    return fail(errmsg, -EREMOTEIO, msgf("%s", e && *e ? e : "request failed"));
}

control_code_t control_reply_code(const json_t *reply)
{
    const char *c = json_string_value(json_object_get(reply, "code"));
    for (size_t i = 0; c && i < sizeof(code_names) / sizeof(code_names[0]); i++)
        if (strcmp(c, code_names[i]) == 0)
            return (control_code_t)i;
    return CONTROL_FAILED;
}

char *control_encode(const json_t *msg, size_t *len)
{
    char *s = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s && len)
        *len = strlen(s);
    return s;
}

/* ------------------------------------------------------- shared reply data ----- */

void control_format_time(int64_t ms, char buf[CONTROL_TIME_STRLEN])
{
    struct tm tm;
    buf[0] = '\0';
    if (ms == DB_TIME_NONE)
        return;
    int64_t msec = ms % 1000;
    time_t secs = (time_t)(ms / 1000);
    if (msec < 0) {
        msec += 1000;
        secs--;
    }
    if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return;
    /* Room for any int, so the compiler can see nothing is cut; the year is 4 digits. */
    char t[80];
    snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)msec);
    memcpy(buf, t, CONTROL_TIME_STRLEN - 1);
    buf[CONTROL_TIME_STRLEN - 1] = '\0';
}

/* A string or null; NULL when out of memory (or s is not UTF-8: the db stores UTF-8). */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    char t[CONTROL_TIME_STRLEN];
    control_format_time(ms, t);
    return t[0] ? json_string(t) : json_null();
}

json_t *control_receipt_json(const db_receipt_t *r)
{
    bool open = r->state == DB_RECEIPT_OPEN;
    return json_pack("{s:I,s:o,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "id", (json_int_t)r->id,
                     "station", str_or_null(r->station),
                     "rma", str_or_null(r->rma),
                     "state", db_receipt_state_name(r->state),
                     "disposition", str_or_null(r->disposition),
                     "reason", str_or_null(r->reason),
                     "opened_at", time_or_null(r->opened_at),
                     "closed_at", open ? json_null() : time_or_null(r->closed_at),
                     "policy_sha256", str_or_null(r->policy_sha256),
                     "policy_version", str_or_null(r->policy_version));
}

json_t *control_status_station(const char *name, const char *printer)
{
    return json_pack("{s:s,s:o,s:[],s:n}", "name", name, "printer", str_or_null(printer),
                     "scanners", "receipt");
}

int control_status_add_scanner(json_t *station, const char *spec, const char *state,
                               const char *detail)
{
    json_t *list = json_object_get(station, "scanners");
    if (!json_is_array(list))
        return -EINVAL;
    json_t *s = json_pack("{s:s,s:s,s:o}", "spec", spec, "state", state, "detail",
                          str_or_null(detail));
    /* json_array_append_new consumes s, even when it fails. */
    return s && json_array_append_new(list, s) == 0 ? 0 : -ENOMEM;
}

int control_status_set_receipt(json_t *station, const db_receipt_t *open_receipt)
{
    json_t *r = open_receipt ? control_receipt_json(open_receipt) : json_null();
    return r && json_object_set_new(station, "receipt", r) == 0 ? 0 : -ENOMEM;
}

/* --------------------------------------------------------- replay requests ----- */

int replay_request_parse(const void *buf, size_t len, uint64_t *from, char **errmsg)
{
    char *msg = NULL;

    *errmsg = NULL;
    if (len > REPLAY_REQUEST_MAX)
        return fail(errmsg, -EMSGSIZE, msgf("request too large (%zu bytes, at most %u)", len,
                                            REPLAY_REQUEST_MAX));
    if (len == 0)
        return fail(errmsg, -EINVAL, msgf("empty request: expected {\"replay_from\": N}"));
    json_t *j = parse_object(buf, len, &msg);
    if (!j)
        return fail(errmsg, -EINVAL, msg);
    json_t *n = json_object_get(j, "replay_from");
    int rc = 0;
    if (!n || json_object_size(j) != 1)
        rc = fail(errmsg, -EINVAL, msgf("expected {\"replay_from\": N}"));
    else if (!json_is_integer(n) || json_integer_value(n) < 0)
        rc = fail(errmsg, -EINVAL, msgf("replay_from: expected an integer >= 0"));
    else
        *from = json_integer_value(n) == 0 ? 1 : (uint64_t)json_integer_value(n);
    json_decref(j);
    return rc;
}

int replay_ack_parse(const void *buf, size_t len, char *name, uint64_t *seq, char **errmsg)
{
    *errmsg = NULL;
    if (len > REPLAY_REQUEST_MAX)
        return 0;                    /* replay_request_parse says why */
    json_t *j = len ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *n = json_object_get(j, "ack_seq"), *who = json_object_get(j, "subscriber");
    int rc = 1;
    if (!n) {
        json_decref(j);
        return 0;
    }
    const char *w = json_string_value(who);
    size_t wl = w ? strlen(w) : 0;
    if (json_object_size(j) != 2 || !w)
        rc = fail(errmsg, -EINVAL, msgf("expected {\"subscriber\": NAME, \"ack_seq\": N}"));
    else if (!json_is_integer(n) || json_integer_value(n) < 0)
        rc = fail(errmsg, -EINVAL, msgf("ack_seq: expected an integer >= 0"));
    else if (wl < 1 || wl > REPLAY_SUBSCRIBER_MAX ||
             strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != wl)
        rc = fail(errmsg, -EINVAL, msgf("subscriber: expected 1 to %d of A-Z a-z 0-9 _ . -",
                                        REPLAY_SUBSCRIBER_MAX));
    if (rc == 1) {
        memcpy(name, w, wl + 1);
        *seq = (uint64_t)json_integer_value(n);
    }
    json_decref(j);
    return rc;
}

int replay_end_parse(const void *buf, size_t len, uint64_t *last_seq)
{
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_object_get(j, "last_seq");
    int rc = -EBADMSG;
    if (json_is_integer(m) && json_integer_value(m) >= 0) {
        *last_seq = (uint64_t)json_integer_value(m);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* ----------------------------------------------------------- ROUTER envelope --- */

/* One frame into msg; returns 0 or -errno. */
static int recv_frame(void *zsock, zmq_msg_t *msg, int flags)
{
    int r;
    do
        r = zmq_msg_recv(msg, zsock, flags);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

static bool more(void *zsock)
{
    int m = 0;
    size_t sz = sizeof(m);
    return zmq_getsockopt(zsock, ZMQ_RCVMORE, &m, &sz) == 0 && m;
}

/*
 * The first frame is the routing id (ROUTER adds it). An empty frame right after it,
 * with more to come, is a REQ-style delimiter. Frames beyond the first body frame are
 * read and dropped one by one: a peer sending thousands of frames costs only time.
 * Once the first frame is read, the rest of the message is already queued, so the
 * DONTWAIT reads below cannot see EAGAIN.
 */
int router_msg_recv(void *zsock, router_msg_t *m)
{
    zmq_msg_t f;
    int rc;

    memset(&m->peer, 0, sizeof(m->peer));
    m->nframes = 0;
    zmq_msg_init(&m->body);
    zmq_msg_init(&f);
    rc = recv_frame(zsock, &f, ZMQ_DONTWAIT);
    if (rc < 0) {
        zmq_msg_close(&f);
        return rc;
    }
    size_t idlen = zmq_msg_size(&f);
    if (idlen == 0 || idlen > ROUTER_ID_MAX || !more(zsock))
        rc = -EPROTO;
    else {
        memcpy(m->peer.id, zmq_msg_data(&f), idlen);
        m->peer.id_len = idlen;
    }
    bool first = true;
    while (more(zsock)) {
        int r = recv_frame(zsock, &f, ZMQ_DONTWAIT);
        if (r < 0) {
            rc = rc ? rc : r;
            break;
        }
        if (first && zmq_msg_size(&f) == 0 && more(zsock)) {
            m->peer.delimiter = true;
        } else if (m->nframes++ == 0) {
            zmq_msg_move(&m->body, &f);
        }
        first = false;
    }
    zmq_msg_close(&f);
    if (rc < 0)
        router_msg_close(m);
    return rc;
}

void router_msg_close(router_msg_t *m)
{
    zmq_msg_close(&m->body);
    zmq_msg_init(&m->body);
}

const void *router_msg_data(router_msg_t *m)
{
    return zmq_msg_data(&m->body);
}

size_t router_msg_size(const router_msg_t *m)
{
    return zmq_msg_size((zmq_msg_t *)&m->body);
}

/*
 * ROUTER checks the peer's queue when it routes the first frame: once the routing id
 * is accepted, the frames of the same message follow it into that queue (the high
 * water mark counts whole messages), so later frames do not fail with EAGAIN.
 */
int router_send(void *zsock, const router_peer_t *to, const void *const *frames,
                const size_t *lens, size_t n)
{
    int flags = ZMQ_DONTWAIT | ZMQ_SNDMORE;
    if (zmq_send(zsock, to->id, to->id_len, flags) < 0)
        return -errno;
    if (to->delimiter && zmq_send(zsock, "", 0, n ? flags : ZMQ_DONTWAIT) < 0)
        return -errno;
    for (size_t i = 0; i < n; i++) {
        if (zmq_send(zsock, frames[i], lens[i], i + 1 < n ? flags : ZMQ_DONTWAIT) < 0)
            return -errno;
    }
    return 0;
}
