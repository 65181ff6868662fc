/* Integer range of int32 gradient accumulators (compiler.ref.grad_ops.grad_range_int), the
 * statistic tt_requant_grad_s8 chooses its scale from. */
#include "tt_grad_core.h"

/* Range statistic of n int32 values in one pass that computes only what the range kind
   reads: max |v| (shift kinds) or sum |v| (mean kinds). */
TT_KERNEL int64_t tt_grad_range_s32(const int32_t *acc, int32_t n, tt_grad_range range)
{
    if (n <= 0) return 0;
    if (range.kind == TT_RANGE_SHIFT) {
        uint32_t m0 = 0, m1 = 0; /* two chains of max |v| (EOR + SUB with ASR #31) */
        int32_t i = 0;
        for (; i + 2 <= n; i += 2) {
            const uint32_t a = tt_abs32(acc[i]), b = tt_abs32(acc[i + 1]);
            m0 = a > m0 ? a : m0;
            m1 = b > m1 ? b : m1;
        }
        if (i < n) {
            const uint32_t a = tt_abs32(acc[i]);
            m0 = a > m0 ? a : m0;
        }
        return (int64_t)((m0 > m1 ? m0 : m1) >> range.k);
    }
    uint64_t sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += tt_abs32(acc[i]);
    return (int64_t)range.k * (int64_t)(sum / (uint64_t)n);
}
