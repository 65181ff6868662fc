/* Fused inverted-residual block (see tt_block.h). */
#include <string.h>
#include "tt_block.h"

TT_KERNEL void tt_block_s8(const tt_block_params *p, const int8_t *in, int8_t *out,
                           int8_t *band, int8_t *row, void *scratch)
{
    const tt_conv_params *dw = p->dw, *pw2 = p->pw2;
    const size_t band_row = (size_t)dw->in_w * (size_t)dw->in_c;
    const size_t in_row = p->pw1 ? (size_t)p->pw1->in_w * (size_t)p->pw1->in_c : band_row;
    const size_t out_row = (size_t)pw2->out_w * (size_t)pw2->out_c;
    int32_t b0 = 0, nb = 0; /* band holds expanded rows [b0, b0 + nb) */

    for (int32_t y = 0; y < dw->out_h; ++y) {
        int32_t r0, r1;
        tt_band_in_rows(dw, y, y + 1, &r0, &r1);
        if (p->pw1) {
            if (r0 >= b0 + nb) {
                b0 = r0;
                nb = 0;
            } else if (r0 > b0) {
                int32_t drop = r0 - b0;
                memmove(band, band + (size_t)drop * band_row, (size_t)(nb - drop) * band_row);
                b0 = r0;
                nb -= drop;
            }
            if (b0 + nb < r1) {
                p->pw1_kernel(p->pw1, in, 0, band + (size_t)nb * band_row, b0 + nb, b0 + nb,
                              r1, scratch);
                nb = r1 - b0;
            }
            p->dw_kernel(dw, band, b0, row, y, y, y + 1, scratch);
        } else {
            p->dw_kernel(dw, in, 0, row, y, y, y + 1, scratch);
        }
        tt_conv2d_1x1_s8(pw2, row, y, out, 0, y, y + 1, scratch);
        if (p->add) {
            int8_t *o = out + (size_t)y * out_row;
            const int8_t *x = in + (size_t)y * in_row;
            if (p->add_in_first) tt_add_s8(p->add, x, o, o, (int32_t)out_row);
            else tt_add_s8(p->add, o, x, o, (int32_t)out_row);
        }
    }
}
