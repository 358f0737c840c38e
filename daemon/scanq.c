/* The scans of one station waiting for the database (daemon/scanq.h). */
#include "daemon/scanq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct scanq {
    scanq_item_t *items;    /* a ring of cap: head .. head + n - 1; grown on demand */
    size_t cap;
    size_t head, n;
};

static void item_clear(scanq_item_t *it)
{
    scan_clear(&it->scan);
    free(it->scanner_id);
    free(it->raw);
    free(it->reason);
    memset(it, 0, sizeof(*it));
}

scanq_t *scanq_new(void)
{
    return calloc(1, sizeof(scanq_t));
}

void scanq_destroy(scanq_t **qp)
{
    if (!qp || !*qp)
        return;
    scanq_t *q = *qp;
    for (size_t i = 0; i < q->n; i++)
        item_clear(&q->items[(q->head + i) % q->cap]);
    free(q->items);
    free(q);
    *qp = NULL;
}

size_t scanq_len(const scanq_t *q)
{
    return q ? q->n : 0;
}

const scanq_item_t *scanq_head(const scanq_t *q)
{
    return q && q->n ? &q->items[q->head] : NULL;
}

void scanq_pop(scanq_t *q)
{
    if (!q || !q->n)
        return;
    item_clear(&q->items[q->head]);
    q->head = (q->head + 1) % q->cap;
    q->n--;
}

void scanq_pop_last(scanq_t *q)
{
    if (!q || !q->n)
        return;
    q->n--;
    item_clear(&q->items[(q->head + q->n) % q->cap]);
}

/* Double the ring (a burst: a scanner's batch memory, a tote replayed), keeping the order. */
static int grow(scanq_t *q)
{
    size_t cap = q->cap ? q->cap * 2 : 8;
    if (cap > SCANQ_MAX)
        cap = SCANQ_MAX;
    scanq_item_t *items = malloc(cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < q->n; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
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
    if (q->n == q->cap && grow(q) < 0)
        return -ENOMEM;
    scanq_item_t it = { .rejected = !scan, .owner = owner };
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
    q->items[(q->head + q->n) % q->cap] = it;
    q->n++;
    return 0;
}
