/* Integer range of int32 gradient accumulators (compiler.ref.grad_ops.grad_range_int), the
 * statistic tt_requant_grad_s8 chooses its scale from. */
#include "tt_grad_core.h"

/* m = max(m, |v|), m2 = 2m (|v| <= 2^31: m2 wraps only when m = 2^31, which ends the scan) */
static inline void tt_range_raise(int32_t v, uint32_t *m, uint32_t *m2)
{
    const uint32_t a = tt_abs32(v);
    if (a > *m) {
        *m = a;
        *m2 = 2u * a;
    }
}

/* Range statistic of n int32 values in one pass that computes only what the range kind
   reads: max |v| (max kinds) or sum |v| (mean kinds). */
TT_KERNEL int64_t tt_grad_range_s32(const int32_t *acc, int32_t n, tt_grad_range range)
{
    if (n <= 0) return 0;
    if (range.kind != TT_RANGE_MEAN) {
        /* max |v|: v lies in [-m, m] iff (uint32)(v + m) <= 2m (m < 2^31), one ADD and
           one compare per value; the rare larger |v| raises m (m = 2^31 ends the scan). */
        uint32_t m = 0, m2 = 0;
        const int32_t *p = acc, *e = acc + n;
        for (; p + 4 <= e; p += 4) {
            const int32_t a = p[0], b = p[1], c = p[2], d = p[3];
            if (TT_LIKELY((uint32_t)a + m <= m2 && (uint32_t)b + m <= m2 &&
                          (uint32_t)c + m <= m2 && (uint32_t)d + m <= m2))
                continue;
            for (int32_t j = 0; j < 4; ++j) tt_range_raise(p[j], &m, &m2);
            if (m >= 0x80000000u) return tt_range_of_max(m, range);
        }
        for (; p < e; ++p) tt_range_raise(*p, &m, &m2);
        return tt_range_of_max(m, range);
    }
    uint64_t sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += tt_abs32(acc[i]);
    return (int64_t)range.k * (int64_t)(sum / (uint64_t)n);
}
