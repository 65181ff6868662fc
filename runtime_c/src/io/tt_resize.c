/* Integer resize + channel conversion (definition in tt_resize.h). */
#include <string.h>
#include "tt_resize.h"

int tt_resize_channels_ok(int sc, int dc)
{
    if (sc < 1 || sc > TT_RESIZE_MAX_C || dc < 1 || dc > TT_RESIZE_MAX_C) return 0;
    return sc == dc || (sc == 1 && dc == 3) || (sc == 3 && dc == 1);
}

static int dim_ok(int d)
{
    return d >= 1 && d <= TT_RESIZE_MAX_DIM;
}

/* Source coordinate in 1/256 pixel units for bilinear sampling (see the header). */
static uint32_t coord_q8(int d, int sd, int dd)
{
    uint32_t num = (uint32_t)(2 * d + 1) * (uint32_t)sd * 128u;
    int32_t f = (int32_t)(num / (uint32_t)dd) - 128;
    int32_t hi = (int32_t)(sd - 1) * 256;
    if (f < 0) f = 0;
    if (f > hi) f = hi;
    return (uint32_t)f;
}

static void convert(const uint32_t *v, int sc, uint8_t *out, int dc)
{
    if (sc == dc) {
        for (int c = 0; c < dc; ++c) out[c] = (uint8_t)v[c];
    } else if (sc == 1) {           /* gray -> RGB */
        out[0] = out[1] = out[2] = (uint8_t)v[0];
    } else {                        /* RGB -> gray */
        out[0] = (uint8_t)((77u * v[0] + 150u * v[1] + 29u * v[2] + 128u) >> 8);
    }
}

int tt_resize_u8(const uint8_t *src, int sh, int sw, int sc,
                 uint8_t *dst, int dh, int dw, int dc, int mode)
{
    if (!src || !dst || !dim_ok(sh) || !dim_ok(sw) || !dim_ok(dh) || !dim_ok(dw)) return -1;
    if (!tt_resize_channels_ok(sc, dc)) return -1;
    if (mode != TT_RESIZE_NEAREST && mode != TT_RESIZE_BILINEAR) return -1;
    if (sh == dh && sw == dw && sc == dc) {
        memcpy(dst, src, (size_t)sh * (size_t)sw * (size_t)sc);
        return 0;
    }
    uint32_t v[TT_RESIZE_MAX_C];
    const size_t srow = (size_t)sw * (size_t)sc;
    for (int y = 0; y < dh; ++y) {
        uint8_t *out = dst + (size_t)y * (size_t)dw * (size_t)dc;
        if (mode == TT_RESIZE_NEAREST) {
            uint32_t sy = ((uint32_t)(2 * y + 1) * (uint32_t)sh) / (2u * (uint32_t)dh);
            const uint8_t *row = src + sy * srow;
            for (int x = 0; x < dw; ++x, out += dc) {
                uint32_t sx = ((uint32_t)(2 * x + 1) * (uint32_t)sw) / (2u * (uint32_t)dw);
                const uint8_t *p = row + sx * (uint32_t)sc;
                for (int c = 0; c < sc; ++c) v[c] = p[c];
                convert(v, sc, out, dc);
            }
        } else {
            uint32_t fy = coord_q8(y, sh, dh);
            uint32_t y0 = fy >> 8, wy = fy & 255u;
            uint32_t y1 = y0 + 1u < (uint32_t)sh ? y0 + 1u : (uint32_t)sh - 1u;
            const uint8_t *r0 = src + y0 * srow, *r1 = src + y1 * srow;
            for (int x = 0; x < dw; ++x, out += dc) {
                uint32_t fx = coord_q8(x, sw, dw);
                uint32_t x0 = fx >> 8, wx = fx & 255u;
                uint32_t x1 = x0 + 1u < (uint32_t)sw ? x0 + 1u : (uint32_t)sw - 1u;
                uint32_t w00 = (256u - wx) * (256u - wy), w01 = wx * (256u - wy);
                uint32_t w10 = (256u - wx) * wy, w11 = wx * wy;
                for (int c = 0; c < sc; ++c) {
                    uint32_t a = r0[x0 * (uint32_t)sc + (uint32_t)c], b = r0[x1 * (uint32_t)sc + (uint32_t)c];
                    uint32_t d = r1[x0 * (uint32_t)sc + (uint32_t)c], e = r1[x1 * (uint32_t)sc + (uint32_t)c];
                    v[c] = (a * w00 + b * w01 + d * w10 + e * w11 + 32768u) >> 16;
                }
                convert(v, sc, out, dc);
            }
        }
    }
    return 0;
}
