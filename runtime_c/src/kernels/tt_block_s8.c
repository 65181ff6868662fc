/* Fused inverted-residual block (see tt_block.h). */
#include "tt_block.h"
#include "tt_gemm.h"

/* The band drops its first rows: d < s, copied forwards a word at a time (the C
   library's memmove may go byte by byte); on the Cortex-M7, when both are word-aligned,
   32 bytes per LDM / STM pair (each block is read before it is written, and d < s). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void band_shift(int8_t *d, const int8_t *s, size_t n)
{
#if defined(__ARM_ARCH_7EM__) && defined(__GNUC__)
    if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0 && n >= 32) {
        const int8_t *end = s + (n & ~(size_t)31);
        __asm volatile("1:\n\t"
                       "ldmia   %[s]!, {r3, r4, r5, r6, r8, r9, r10, r12}\n\t"
                       "stmia   %[d]!, {r3, r4, r5, r6, r8, r9, r10, r12}\n\t"
                       "cmp     %[s], %[e]\n\t"
                       "bne     1b\n"
                       : [s] "+r"(s), [d] "+r"(d)
                       : [e] "r"(end)
                       : "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r12", "cc", "memory");
        n &= 31;
    }
#endif
    for (; n >= 16; n -= 16, d += 16, s += 16) {
        int32_t a = tt_ld32(s), b = tt_ld32(s + 4), c = tt_ld32(s + 8), e = tt_ld32(s + 12);
        tt_st32(d, a);
        tt_st32(d + 4, b);
        tt_st32(d + 8, c);
        tt_st32(d + 12, e);
    }
    for (; n > 0; --n) *d++ = *s++;
}

/* One prepared (or plain) convolution of the block over output rows [y0, y1). */
typedef struct {
    const tt_conv_params *p;
    tt_spatial_kernel kernel;
    int32_t *prep; /* NULL: call the kernel */
    int pointwise;
} blk_conv;

static void blk_conv_init(blk_conv *c, const tt_conv_params *p, tt_spatial_kernel kernel,
                          int32_t prep_bytes, int8_t **at)
{
    c->p = p;
    c->kernel = kernel;
    c->prep = NULL;
    c->pointwise = kernel == tt_conv2d_1x1_s8;
#if TT_DSP
    if (prep_bytes > 0) {
        c->prep = (int32_t *)(void *)*at;
        tt_prep_layer(p, c->pointwise ? p->in_c : p->k_h * p->k_w * p->in_c, c->prep);
    }
#endif
    *at += prep_bytes;
}

static void blk_conv_run(const blk_conv *c, const int8_t *in, int32_t in_row0, int8_t *out,
                         int32_t out_row0, int32_t y0, int32_t y1, void *scratch)
{
#if TT_DSP
    if (c->prep) {
        const tt_conv_params *p = c->p;
        int32_t *blocks = tt_prep_blocks(c->prep);
        if (c->pointwise) {
            int8_t *sink = tt_prep_sink(c->prep, p->in_c, p->out_c);
            tt_pw_rows(p, blocks, 0, p->out_c, c->prep[0], in, in_row0, out, out_row0, y0, y1,
                       (int32_t *)scratch, sink);
        } else {
            int8_t *sink = tt_prep_sink(c->prep, p->k_h * p->k_w * p->in_c, p->out_c);
            tt_conv_rows(p, blocks, 0, p->out_c, c->prep[0], in, in_row0, out, out_row0, y0,
                         y1, (int32_t *)scratch, sink);
        }
        return;
    }
#endif
    c->kernel(c->p, in, in_row0, out, out_row0, y0, y1, scratch);
}

TT_KERNEL void tt_block_s8(const tt_block_params *p, const int8_t *in, int8_t *out,
                           int8_t *band, int8_t *row, void *scratch)
{
    const tt_conv_params *dw = p->dw, *pw2 = p->pw2;
    const size_t band_row = (size_t)dw->in_w * (size_t)dw->in_c;
    const size_t in_row = p->pw1 ? (size_t)p->pw1->in_w * (size_t)p->pw1->in_c : band_row;
    const size_t out_row = (size_t)pw2->out_w * (size_t)pw2->out_c;
    int32_t b0 = 0, nb = 0; /* band holds expanded rows [b0, b0 + nb) */
    int8_t *ks = (int8_t *)scratch;
    blk_conv c1 = {NULL, NULL, NULL, 0}, c2;
    if (p->pw1) blk_conv_init(&c1, p->pw1, p->pw1_kernel, p->prep1, &ks);
    blk_conv_init(&c2, pw2, p->pw2_kernel ? p->pw2_kernel : tt_conv2d_1x1_s8, p->prep2, &ks);

    const int32_t rows = tt_block_rows(p);
    for (int32_t y = 0; y < dw->out_h; y += rows) {
        const int32_t y1 = y + rows < dw->out_h ? y + rows : dw->out_h;
        int32_t r0, r1;
        tt_band_in_rows(dw, y, y1, &r0, &r1);
        if (p->pw1) {
            if (r0 >= b0 + nb) {
                b0 = r0;
                nb = 0;
            } else if (r0 > b0) {
                int32_t drop = r0 - b0;
                band_shift(band, band + (size_t)drop * band_row, (size_t)(nb - drop) * band_row);
                b0 = r0;
                nb -= drop;
            }
            if (b0 + nb < r1) {
                blk_conv_run(&c1, in, 0, band + (size_t)nb * band_row, b0 + nb, b0 + nb, r1, ks);
                nb = r1 - b0;
            }
            p->dw_kernel(dw, band, b0, row, y, y, y1, ks);
        } else {
            p->dw_kernel(dw, in, 0, row, y, y, y1, ks);
        }
        blk_conv_run(&c2, row, y, out, 0, y, y1, ks);
        if (p->add) {
            int8_t *o = out + (size_t)y * out_row;
            const int8_t *x = in + (size_t)y * in_row;
            const int32_t n = (int32_t)((size_t)(y1 - y) * out_row);
            if (p->add_in_first) tt_add_s8(p->add, x, o, o, n);
            else tt_add_s8(p->add, o, x, o, n);
        }
    }
}
