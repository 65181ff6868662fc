/* Packing activations saved at 2..8 bits for a weight gradient (compiler.ref.grad_ops.lowp_pack /
 * lowp_activation): code q = clamp((x - lo + 2^(s-1)) >> s, 0, 2^bits - 1), s = 8 - bits,
 * 8 / bits codes per byte (the first in the lowest bits); restored as lo + q * 2^s. */
#include "tt_grad_core.h"

TT_KERNEL int tt_act_lowp_pack_s8(const int8_t *x, int32_t n, int32_t lo, int32_t bits,
                                  uint8_t *packed)
{
    if (bits < 2 || bits > 8 || n < 0) return TT_ERR_ARG;
    const int32_t s = 8 - bits, half = (1 << s) >> 1, qmax = (1 << bits) - 1, per = 8 / bits;
    for (int32_t i = 0, o = 0; i < n; i += per, ++o) {
        uint32_t byte = 0;
        for (int32_t j = 0; j < per && i + j < n; ++j) {
            int32_t q = ((int32_t)x[i + j] - lo + half) >> s;
            q = q < 0 ? 0 : q > qmax ? qmax : q;
            byte |= (uint32_t)q << (j * bits);
        }
        packed[o] = (uint8_t)byte;
    }
    return TT_OK;
}
