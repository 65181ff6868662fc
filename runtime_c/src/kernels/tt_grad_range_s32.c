/* Integer range of int32 gradient accumulators (compiler.ref.grad_ops.grad_range_int), the
 * statistic tt_requant_grad_s8 chooses its scale from. */
#include "tt_grad_core.h"

/* Range statistic of n int32 values in one pass that computes only what the range kind
   reads: max |v| (shift kinds) or sum |v| (mean kinds). */
TT_KERNEL int64_t tt_grad_range_s32(const int32_t *acc, int32_t n, tt_grad_range range)
{
    if (n <= 0) return 0;
    if (range.kind == TT_RANGE_SHIFT) {
        int32_t hi = 0, lo = 0; /* max and min, |min| taken at the end (INT32_MIN too) */
        int32_t i = 0;
        for (; i + 2 <= n; i += 2) {
            const int32_t a = acc[i], b = acc[i + 1];
            hi = a > hi ? a : hi;
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
            lo = b < lo ? b : lo;
        }
        if (i < n) {
            hi = acc[i] > hi ? acc[i] : hi;
            lo = acc[i] < lo ? acc[i] : lo;
        }
        const uint32_t ml = 0u - (uint32_t)lo, mx = ml > (uint32_t)hi ? ml : (uint32_t)hi;
        return (int64_t)(mx >> range.k);
    }
    uint64_t sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += tt_abs32(acc[i]);
    return (int64_t)range.k * (int64_t)(sum / (uint64_t)n);
}
