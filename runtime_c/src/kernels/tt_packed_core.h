/* Private helpers of the kernels of layers with 4-bit weights (tt_packed.h): a table of
 * the 256 code bytes' weight pairs (built once per call, in the kernel's scratch), row
 * unpacking through it, and the chunked run of a convolution's int8 kernel. */
#ifndef TT_PACKED_CORE_H
#define TT_PACKED_CORE_H
#include <string.h>

#include "tt_packed.h"

static inline const tt_conv_packed_params *tt_packed_conv_of(const tt_conv_params *p)
{
    return (const tt_conv_packed_params *)(const void *)p;
}

/* pairs[b]: the two weights of code byte b (codebook[b & 15], codebook[b >> 4]) in
   memory order, so a row unpacks with one table load and one halfword store per byte. */
static inline void tt_packed_build_pairs(const int8_t *codebook, uint16_t *pairs)
{
    for (int32_t b = 0; b < 256; ++b) {
        const int8_t two[2] = {codebook[b & 15], codebook[b >> 4]};
        memcpy(&pairs[b], two, 2);
    }
}

static inline void tt_packed_unpack(const uint8_t *codes, const uint16_t *pairs, int32_t rows,
                                    int32_t k, int8_t *dst)
{
    const int32_t half = k / 2;
    for (int32_t r = 0; r < rows; ++r) {
        const uint8_t *s = codes + (size_t)r * (size_t)TT_PACKED_ROW(k);
        for (int32_t j = 0; j < half; ++j, dst += 2) memcpy(dst, &pairs[s[j]], 2);
        if (k & 1) {
            int8_t two[2];
            memcpy(two, &pairs[s[half]], 2);
            *dst++ = two[0];
        }
    }
}

/* Channels per unpacked chunk: the layer's `chunk`, or all `co` of them (0 or too many). */
static inline int32_t tt_packed_chunk_of(int32_t chunk, int32_t co)
{
    return chunk > 0 && chunk < co ? chunk : co;
}

/* c (a copy of packed layer p's int8 parameters) without the split weight tail, and the
   code byte -> weight pair table of q's codebook in pairs. */
#define TT_PACKED_BEGIN(c, p, q, pairs)                                                   \
    do {                                                                                  \
        (c) = *(p);                                                                       \
        (c).w_tail = NULL;                                                                \
        (c).w_split = 0;                                                                  \
        tt_packed_build_pairs((q)->codebook, (pairs));                                    \
    } while (0)

/* Output channels [c0, c0 + n) of packed layer p (conv or fc; c is a copy of *p, k the
   weights per channel): their weights unpacked into wbuf and c pointed at them. */
#define TT_PACKED_CHUNK(c, p, q, c0, n, k, pairs, wbuf)                                   \
    do {                                                                                  \
        tt_packed_unpack((q)->codes + (size_t)(c0) * (size_t)TT_PACKED_ROW(k), (pairs),   \
                         (n), (k), (wbuf));                                               \
        (c).out_c = (n);                                                                  \
        (c).w = (wbuf);                                                                   \
        (c).bias = (p)->bias + (c0);                                                      \
        (c).mult = (p)->mult + (c0);                                                      \
        (c).shift = (p)->shift + (c0);                                                    \
        (c).rq = (p)->rq ? (p)->rq + (c0) : NULL;                                         \
    } while (0)

/* Output rows [y0, y1) of a packed conv, `chunk` output channels at a time: their weights
   unpacked once, then one kernel call per `rows` output rows into a row buffer whose
   values go to their channels of the output. */
static inline void tt_packed_conv_chunks(const tt_conv_params *p, tt_spatial_kernel kernel,
                                         const int8_t *in, int32_t in_row0, int8_t *out,
                                         int32_t out_row0, int32_t y0, int32_t y1, void *scratch)
{
    const tt_conv_packed_params *q = tt_packed_conv_of(p);
    const int32_t k = p->k_h * p->k_w * p->in_c, co = p->out_c, ow = p->out_w;
    const int32_t ch = tt_packed_chunk_of(q->chunk, co);
    uint16_t *pairs = (uint16_t *)scratch;
    int8_t *wbuf = (int8_t *)scratch + TT_PACKED_PAIRS_BYTES;
    const int32_t nr = TT_PACKED_ROWS(q->rows);
    int8_t *rowbuf = wbuf + TT_R8((size_t)ch * (size_t)k);
    void *ks = rowbuf + TT_R8((size_t)nr * (size_t)ow * (size_t)ch);
    tt_conv_params c;
    TT_PACKED_BEGIN(c, p, q, pairs);
    for (int32_t c0 = 0; c0 < co; c0 += ch) {
        const int32_t n = co - c0 < ch ? co - c0 : ch;
        TT_PACKED_CHUNK(c, p, q, c0, n, k, pairs, wbuf);
        for (int32_t y = y0; y < y1; y += nr) {
            const int32_t ye = y + nr < y1 ? y + nr : y1;
            kernel(&c, in, in_row0, rowbuf, y, y, ye, ks);
            int8_t *o = out + ((size_t)(y - out_row0) * (size_t)ow) * (size_t)co + (size_t)c0;
            const int8_t *s = rowbuf;
            for (int32_t x = 0; x < (ye - y) * ow; ++x, o += co, s += n)
                for (int32_t i = 0; i < n; ++i) o[i] = s[i];
        }
    }
}

#endif
