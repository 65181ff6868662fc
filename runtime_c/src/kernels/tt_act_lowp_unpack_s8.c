/* Unpacking activations saved at 2..8 bits for a weight gradient (compiler.ref.grad_ops.lowp_pack /
 * lowp_activation): code q = clamp((x - lo + 2^(s-1)) >> s, 0, 2^bits - 1), s = 8 - bits,
 * 8 / bits codes per byte (the first in the lowest bits); restored as lo + q * 2^s. */
#include "tt_grad_core.h"
TT_KERNEL int tt_act_lowp_unpack_s8(const uint8_t *packed, int32_t n, int32_t lo, int32_t bits,
                                    int8_t *x)
{
    if (bits < 2 || bits > 8 || n < 0) return TT_ERR_ARG;
    const int32_t s = 8 - bits, per = 8 / bits;
    const uint32_t mask = (1u << bits) - 1u;
    for (int32_t i = 0, o = 0; i < n; i += per, ++o) {
        const uint32_t byte = packed[o];
        for (int32_t j = 0; j < per && i + j < n; ++j) {
            int32_t v = lo + (int32_t)(((byte >> (j * bits)) & mask) << s);
            x[i + j] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
    }
    return TT_OK;
}
