/* First-fit placement of the arena's buffers: the same placements as
 * compiler/memory/schedule.py:_first_fit_py, compiled for the host and loaded by
 * compiler/memory/native_fit.py (a memory-model evaluation runs about a thousand
 * placements; this is the inner loop of each).
 *
 * Buffers come flattened unit by unit: unit u holds buffers [start[u], start[u+1]), each
 * with its offset rel[i] inside the unit, size[i] and lifetime [first[i], last[i]].
 * Units are placed in the order perm[0], perm[1], ...: each takes the lowest offset (a
 * multiple of align) at which none of its buffers shares a byte with an already placed
 * buffer whose lifetime overlaps its own, except as a loose pair allows: src[i] = j (-1:
 * none) means (j, i) is a pair with lag src_lag[i] (buffer i, the output, may start at
 * j's offset + lag); dst[i] = j means (i, j) is a pair with lag dst_lag[i] (buffer i,
 * the input, may end at j's offset - lag). off[i] receives each buffer's offset. Returns
 * the arena (the largest offset + size), or -1 when out of memory. */
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    int64_t lo, hi;
} span;

static int by_lo_hi(const void *a, const void *b)
{
    const span *x = (const span *)a, *y = (const span *)b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
    return 0;
}

static int64_t align_up(int64_t n, int64_t a)
{
    int64_t q = (n + a - 1) / a;   /* floor division, as Python's // */
    if ((n + a - 1) % a != 0 && (n + a - 1) < 0) --q;
    return q * a;
}

int64_t tt_first_fit(int32_t n_units, const int32_t *perm, const int32_t *start,
                     const int64_t *rel, const int64_t *size, const int64_t *first,
                     const int64_t *last, const int32_t *src, const int64_t *src_lag,
                     const int32_t *dst, const int64_t *dst_lag, int64_t align, int64_t *off)
{
    const int32_t n = start[n_units];
    int32_t *placed = (int32_t *)malloc(((size_t)n + 1) * sizeof(int32_t));
    span *forbidden = NULL;
    size_t cap = 0;
    int32_t np = 0;
    int64_t arena = 0;
    if (!placed) return -1;
    for (int32_t k = 0; k < n_units; ++k) {
        const int32_t u = perm[k], b0 = start[u], b1 = start[u + 1];
        const size_t need = (size_t)(b1 - b0) * (size_t)np + 1;
        if (need > cap) {
            span *f = (span *)realloc(forbidden, need * sizeof(span));
            if (!f) {
                free(forbidden);
                free(placed);
                return -1;
            }
            forbidden = f;
            cap = need;
        }
        size_t nf = 0;
        for (int32_t i = b0; i < b1; ++i) {
            for (int32_t q = 0; q < np; ++q) {
                const int32_t j = placed[q];
                if (last[j] < first[i] || first[j] > last[i]) continue;
                int64_t lo = off[j] - size[i], hi = off[j] + size[j];
                if (src[i] == j) {                  /* i: the output over its input j */
                    const int64_t v = off[j] + src_lag[i];
                    if (v > lo) lo = v;
                } else if (dst[i] == j) {           /* i: the input under its output j */
                    const int64_t v = off[j] - dst_lag[i];
                    if (v < hi) hi = v;
                }
                if (lo < hi) {
                    forbidden[nf].lo = lo - rel[i];
                    forbidden[nf].hi = hi - rel[i];
                    ++nf;
                }
            }
        }
        qsort(forbidden, nf, sizeof(span), by_lo_hi);
        int64_t o = 0;
        for (size_t f = 0; f < nf; ++f) {
            if (o <= forbidden[f].lo) break;
            if (o < forbidden[f].hi) o = align_up(forbidden[f].hi, align);
        }
        for (int32_t i = b0; i < b1; ++i) {
            off[i] = o + rel[i];
            placed[np++] = i;
            if (off[i] + size[i] > arena) arena = off[i] + size[i];
        }
    }
    free(forbidden);
    free(placed);
    return arena;
}
