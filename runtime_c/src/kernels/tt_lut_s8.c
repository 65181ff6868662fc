/* Elementwise function by table (sigmoid, hardsigmoid, hardswish; compiler.ref.ops.lut):
 * y[i] = table[x[i] + 128], the 256-entry table built at compile time from the input's
 * and output's scale and zero point (compiler.ir.ops.lut_table). out may alias in. */
#include "tt_kernels.h"

size_t tt_lut_s8_scratch_bytes(int32_t n)
{
    (void)n;
    return 0;
}

TT_KERNEL void tt_lut_s8(const int8_t *table, const int8_t *in, int8_t *out, int32_t n)
{
    const int8_t *t = table + 128;
    for (int32_t i = 0; i < n; ++i) out[i] = t[in[i]];
}
