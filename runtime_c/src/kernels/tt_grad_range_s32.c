/* Integer range of int32 gradient accumulators (compiler.ref.grad_ops.grad_range_int), the
 * statistic tt_requant_grad_s8 chooses its scale from. */
#include "tt_grad_core.h"

TT_KERNEL int64_t tt_grad_range_s32(const int32_t *acc, int32_t n, tt_grad_range range)
{
    tt_rstat st = {0, 0};
    for (int32_t i = 0; i < n; ++i) tt_rstat_add(&st, acc[i]);
    return tt_rstat_range(&st, n, range);
}
