/* The scans of one station waiting for the database (daemon/scanq.h). */
#include "daemon/scanq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct scanq {
    loop_t *loop;
    scanq_try_fn try_fn;
    void *data;
    scanq_item_t items[SCANQ_MAX];  /* a ring: head .. head + n - 1 */
    size_t head, n;
    uint64_t timer;
};

static void item_clear(scanq_item_t *it)
{
    scan_clear(&it->scan);
    free(it->scanner_id);
    free(it->raw);
    free(it->reason);
    memset(it, 0, sizeof(*it));
}

scanq_t *scanq_new(loop_t *loop, scanq_try_fn try_fn, void *data)
{
    if (!loop || !try_fn)
        return NULL;
    scanq_t *q = calloc(1, sizeof(*q));
    if (q) {
        q->loop = loop;
        q->try_fn = try_fn;
        q->data = data;
    }
    return q;
}

void scanq_destroy(scanq_t **qp)
{
    if (!qp || !*qp)
        return;
    scanq_t *q = *qp;
    if (q->timer)
        (void)loop_del_timer(q->loop, q->timer);
    for (size_t i = 0; i < q->n; i++)
        item_clear(&q->items[(q->head + i) % SCANQ_MAX]);
    free(q);
    *qp = NULL;
}

size_t scanq_len(const scanq_t *q)
{
    return q ? q->n : 0;
}

/* Try the waiting items in order; stop at the first that must wait longer. */
static int64_t retry(loop_t *loop, uint64_t id, void *data)
{
    scanq_t *q = data;
    (void)loop;
    (void)id;
    while (q->n > 0) {
        scanq_item_t *it = &q->items[q->head];
        if (q->try_fn(it, q->data) == -EBUSY)
            return SCANQ_RETRY_MS;
        item_clear(it);
        q->head = (q->head + 1) % SCANQ_MAX;
        q->n--;
    }
    q->timer = 0;
    return -1;
}

static char *dup_str(const char *s, int *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

int scanq_push(scanq_t *q, const scan_t *scan, const char *scanner_id, const uint8_t *raw,
               size_t raw_len, const char *reason, void *owner)
{
    if (!q || !scanner_id)
        return -EINVAL;
    if (q->n == SCANQ_MAX)
        return -ENOBUFS;
    scanq_item_t it = { .rejected = !scan, .owner = owner, .queued_ms = loop_now_ms() };
    int oom = 0;
    it.scanner_id = dup_str(scanner_id, &oom);
    if (scan) {
        it.scan = *scan;
        it.scan.text = it.scan.scanner = NULL;
        it.scan.raw = NULL;
        it.scan.text = scan->text ? malloc(scan->len + 1) : NULL;
        if (scan->text && it.scan.text)
            memcpy(it.scan.text, scan->text, scan->len + 1);
        else if (scan->text)
            oom = 1;
        it.scan.raw = scan->raw_len ? malloc(scan->raw_len) : NULL;
        if (scan->raw_len && it.scan.raw)
            memcpy(it.scan.raw, scan->raw, scan->raw_len);
        else if (scan->raw_len)
            oom = 1;
        it.scan.scanner = dup_str(scan->scanner, &oom);
    } else {
        it.raw = raw_len ? malloc(raw_len) : NULL;
        if (raw_len && it.raw)
            memcpy(it.raw, raw, raw_len);
        else if (raw_len)
            oom = 1;
        it.raw_len = raw_len;
        it.reason = dup_str(reason, &oom);
    }
    if (oom) {
        item_clear(&it);
        return -ENOMEM;
    }
    q->items[(q->head + q->n) % SCANQ_MAX] = it;
    q->n++;
    if (!q->timer && !(q->timer = loop_add_timer(q->loop, SCANQ_RETRY_MS, retry, q))) {
        q->n--;
        item_clear(&q->items[(q->head + q->n) % SCANQ_MAX]);
        return -ENOMEM;
    }
    return 0;
}
