/* Integer image resize + channel conversion for SAMPLE inputs (uint8, HWC, row-major).
 * Bit-exact twin: resize_u8() in host/protocol.py. Exact definition:
 *
 *   nearest:  sy = ((2*y + 1) * sh) / (2 * dh)        (integer division; same for x)
 *             i.e. the source pixel whose cell contains the destination pixel centre.
 *   bilinear: half-pixel centres (align_corners = false), 8 fractional bits:
 *             fy = ((2*y + 1) * sh * 128) / dh - 128, clamped to [0, (sh - 1) * 256];
 *             y0 = fy >> 8, wy = fy & 255, y1 = min(y0 + 1, sh - 1)   (same for x)
 *             v  = (p[y0][x0]*(256-wx)*(256-wy) + p[y0][x1]*wx*(256-wy)
 *                 + p[y1][x0]*(256-wx)*wy     + p[y1][x1]*wx*wy + 32768) >> 16
 *   Interpolation runs per source channel; then the channels are converted:
 *     sc == dc         copy
 *     sc == 1, dc == 3 gray replicated to R, G, B
 *     sc == 3, dc == 1 gray = (77*R + 150*G + 29*B + 128) >> 8
 *   Same shape: an exact copy (both modes reproduce the input).
 *   No antialiasing filter when shrinking.
 * Limits: 1 <= h, w <= TT_RESIZE_MAX_DIM, 1 <= c <= 4; all intermediate values fit in
 * uint32. src and dst must not overlap. Returns 0, or -1 for unsupported arguments
 * (dst untouched).
 */
#ifndef TT_RESIZE_H
#define TT_RESIZE_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_RESIZE_NEAREST  0
#define TT_RESIZE_BILINEAR 1
#define TT_RESIZE_MAX_DIM  2048
#define TT_RESIZE_MAX_C    4

/* Non-zero if a (sc -> dc) channel conversion is supported. */
int tt_resize_channels_ok(int sc, int dc);
int tt_resize_u8(const uint8_t *src, int sh, int sw, int sc,
                 uint8_t *dst, int dh, int dw, int dc, int mode);

#ifdef __cplusplus
}
#endif
#endif
