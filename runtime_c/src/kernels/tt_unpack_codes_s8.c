/* 4-bit codes -> int8 weights through a layer's codebook (tt_packed.h). */
#include "tt_packed.h"

TT_KERNEL void tt_unpack_codes_s8(const uint8_t *codes, const int8_t *codebook, int32_t rows,
                                  int32_t k, int8_t *dst)
{
    const int32_t half = k / 2;
    for (int32_t r = 0; r < rows; ++r) {
        const uint8_t *s = codes + (size_t)r * (size_t)TT_PACKED_ROW(k);
        for (int32_t j = 0; j < half; ++j) {
            const uint32_t b = s[j];
            dst[0] = codebook[b & 15u];
            dst[1] = codebook[b >> 4];
            dst += 2;
        }
        if (k & 1) *dst++ = codebook[s[half] & 15u];
    }
}
