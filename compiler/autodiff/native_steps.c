/* Host-only twins of the analysis trainer's small numpy steps (compiler/autodiff/
   native_steps.py): the same integer arithmetic as compiler/ref (ops.py, grad_ops.py,
   ir/qmath.py), in one pass per call instead of several numpy passes over temporaries.
   A batch-1 training step runs about a hundred of these steps on small tensors, where
   numpy's per-call cost, not the arithmetic, is the time.

   numpy's int64 arithmetic wraps; here products and sums that could leave int64 are done
   in uint64 (the same bits), and narrowing conversions wrap as numpy's astype does.
   Arrays are C-contiguous; per-channel vectors (bias, mult, shift) have one int32 per
   channel, and a function taking them returns -1 (nothing written) when a shift is
   outside the reference's [-31, 30]. Never used on the device: the firmware has its
   own kernels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* compiler.ir.qmath.requantize: (acc * mult + 2^(30 - shift)) >> (31 - shift) */
static inline int64_t rq(int64_t acc, int64_t mult, int64_t shift)
{
    const int64_t total = 31 - shift;
    uint64_t v = (uint64_t)acc * (uint64_t)mult + ((uint64_t)1 << (total - 1));
    return (int64_t)v >> total;
}

/* Per-channel requantization prepared for loops the compiler vectorises: out[j] =
   clamp(rq(acc[j] + bias[j]) + yz), with rq's multiplier, rounding and shift as int64
   vectors. */
typedef struct {
    int64_t *b, *m, *r, *t;
} rq_vec;

static int rq_vec_init(rq_vec *v, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                       int64_t c)
{
    v->b = malloc((size_t)(c > 0 ? c : 1) * 4 * sizeof(int64_t));
    if (!v->b) return -1;
    v->m = v->b + c;
    v->r = v->m + c;
    v->t = v->r + c;
    for (int64_t j = 0; j < c; ++j) {
        v->b[j] = bias[j];
        v->m[j] = mult[j];
        v->t[j] = 31 - (int64_t)shift[j];
        v->r[j] = (int64_t)1 << (v->t[j] - 1);
    }
    return 0;
}

static inline void rq_vec_apply(const rq_vec *v, const int32_t *acc, int64_t c, int64_t yz,
                                int64_t lo, int64_t hi, int8_t *out)
{
    for (int64_t j = 0; j < c; ++j) {
        const uint64_t a = (uint64_t)((int64_t)acc[j] + v->b[j]);
        int64_t y = ((int64_t)(a * (uint64_t)v->m[j] + (uint64_t)v->r[j]) >> v->t[j]) + yz;
        y = y < lo ? lo : y;
        y = y > hi ? hi : y;
        out[j] = (int8_t)y;
    }
}

static int shifts_ok(const int32_t *shift, int64_t c)
{
    for (int64_t j = 0; j < c; ++j)
        if (shift[j] < -31 || shift[j] > 30) return 0;
    return 1;
}

static inline int8_t clamp8(int64_t v, int64_t lo, int64_t hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (int8_t)v;
}

/* ops.conv2d's tail after a float GEMM: out = clamp(requantize(rint(acc) + bias) + yz),
   acc [m, c] of exact integers */
int tt_h_rq_tail_f32(const float *acc, int64_t m, int64_t c, const int32_t *bias,
                     const int32_t *mult, const int32_t *shift, int64_t yz, int64_t lo,
                     int64_t hi, int8_t *out)
{
    rq_vec v;
    int32_t *a = malloc((size_t)(c > 0 ? c : 1) * sizeof(int32_t));
    if (!shifts_ok(shift, c) || !a || rq_vec_init(&v, bias, mult, shift, c)) {
        free(a);
        return -1;
    }
    for (int64_t i = 0; i < m; ++i) {
        /* exact integers of magnitude below 2^24 (ops.conv_sums' float32 bound) */
        for (int64_t j = 0; j < c; ++j) a[j] = (int32_t)acc[i * c + j];
        rq_vec_apply(&v, a, c, yz, lo, hi, out + i * c);
    }
    free(a);
    free(v.b);
    return 0;
}

int tt_h_rq_tail_f64(const double *acc, int64_t m, int64_t c, const int32_t *bias,
                     const int32_t *mult, const int32_t *shift, int64_t yz, int64_t lo,
                     int64_t hi, int8_t *out)
{
    if (!shifts_ok(shift, c)) return -1;
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < c; ++j) {
            const int64_t a = (int64_t)rint(acc[i * c + j]) + bias[j];
            out[i * c + j] = clamp8(rq(a, mult[j], shift[j]) + yz, lo, hi);
        }
    return 0;
}

/* ops.conv2d of a depthwise conv (groups == in == out channels): x int8 [n, h, w, c],
   wt int8 [c, kh, kw], out int8 [n, ho, wo, c]; padding taps are x's zero point. The
   caller checks kh * kw * 255 * 128 < 2^31 (the sums fit int32). Returns -1 when out
   of memory (nothing written). */
int tt_h_dw_fwd(const int8_t *x, int64_t n, int64_t h, int64_t w, int64_t c, const int8_t *wt,
                int64_t kh, int64_t kw, const int32_t *bias, int64_t xz, int64_t sh, int64_t sw,
                int64_t ph, int64_t pw, int64_t ho, int64_t wo, const int32_t *mult,
                const int32_t *shift, int64_t yz, int64_t lo, int64_t hi, int8_t *out)
{
    if (!shifts_ok(shift, c)) return -1;
    rq_vec v;
    if (rq_vec_init(&v, bias, mult, shift, c)) return -1;
    int32_t *acc = malloc((size_t)c * sizeof(int32_t));
    int32_t *wk = malloc((size_t)(kh * kw * c) * sizeof(int32_t));
    int32_t *xs = malloc((size_t)c * sizeof(int32_t));
    if (!acc || !wk || !xs) {
        free(acc); free(wk); free(xs); free(v.b);
        return -1;
    }
    for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t t = 0; t < kh * kw; ++t)
            wk[t * c + ch] = wt[ch * kh * kw + t];
    for (int64_t b = 0; b < n; ++b)
        for (int64_t oy = 0; oy < ho; ++oy)
            for (int64_t ox = 0; ox < wo; ++ox) {
                memset(acc, 0, (size_t)c * sizeof(int32_t));
                for (int64_t ky = 0; ky < kh; ++ky) {
                    const int64_t iy = oy * sh - ph + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int64_t kx = 0; kx < kw; ++kx) {
                        const int64_t ix = ox * sw - pw + kx;
                        if (ix < 0 || ix >= w) continue;
                        const int8_t *xp = x + ((b * h + iy) * w + ix) * c;
                        const int32_t *wp = wk + (ky * kw + kx) * c;
                        for (int64_t ch = 0; ch < c; ++ch) xs[ch] = xp[ch] - (int32_t)xz;
                        for (int64_t ch = 0; ch < c; ++ch) acc[ch] += xs[ch] * wp[ch];
                    }
                }
                rq_vec_apply(&v, acc, c, yz, lo, hi, out + ((b * ho + oy) * wo + ox) * c);
            }
    free(acc); free(wk); free(xs); free(v.b);
    return 0;
}

/* grad_ops.conv_grad_input of a depthwise conv: t int16 [n, ho, wo, c], wt int8
   [c, kh, kw] -> gx int32 [n, h, w, c] (the reference's int64 sums, wrapped to int32:
   summed here modulo 2^32) */
int tt_h_dw_grad_in(const int16_t *t, int64_t n, int64_t ho, int64_t wo, int64_t c,
                    const int8_t *wt, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                    int64_t pw, int64_t h, int64_t w, int32_t *gx)
{
    uint32_t *wk = malloc((size_t)(kh * kw * c) * sizeof(uint32_t));
    if (!wk) return -1;
    for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t k = 0; k < kh * kw; ++k)
            wk[k * c + ch] = (uint32_t)(int32_t)wt[ch * kh * kw + k];
    uint32_t *g = (uint32_t *)gx;
    memset(g, 0, (size_t)(n * h * w * c) * sizeof(uint32_t));
    for (int64_t b = 0; b < n; ++b)
        for (int64_t oy = 0; oy < ho; ++oy)
            for (int64_t ky = 0; ky < kh; ++ky) {
                const int64_t iy = oy * sh - ph + ky;
                if (iy < 0 || iy >= h) continue;
                for (int64_t ox = 0; ox < wo; ++ox) {
                    const int16_t *tp = t + ((b * ho + oy) * wo + ox) * c;
                    for (int64_t kx = 0; kx < kw; ++kx) {
                        const int64_t ix = ox * sw - pw + kx;
                        if (ix < 0 || ix >= w) continue;
                        uint32_t *gp = g + ((b * h + iy) * w + ix) * c;
                        const uint32_t *wp = wk + (ky * kw + kx) * c;
                        for (int64_t ch = 0; ch < c; ++ch)
                            gp[ch] += (uint32_t)(int32_t)tp[ch] * wp[ch];
                    }
                }
            }
    free(wk);
    return 0;
}

/* grad_ops.conv_grad_input of a 1x1 conv without padding (groups 1): t int16 [n, ho, wo,
   co], wt int8 [co, ci] -> gx int32 [n, h, w, ci], nonzero only at the pixels the stride
   reads (sums modulo 2^32, as the reference's int64 sums wrapped to int32). Zero
   gradients (most, after a clamp mask) are skipped. */
int tt_h_pw_grad_in(const int16_t *t, int64_t n, int64_t ho, int64_t wo, int64_t co,
                    const int8_t *wt, int64_t ci, int64_t sh, int64_t sw, int64_t h, int64_t w,
                    int32_t *gx)
{
    uint32_t *wk = malloc((size_t)(ci * co > 0 ? ci * co : 1) * sizeof(uint32_t));
    if (!wk) return -1;
    for (int64_t k = 0; k < ci * co; ++k) wk[k] = (uint32_t)(int32_t)wt[k];
    uint32_t *g = (uint32_t *)gx;
    memset(g, 0, (size_t)(n * h * w * ci) * sizeof(uint32_t));
    for (int64_t b = 0; b < n; ++b)
        for (int64_t oy = 0; oy < ho && oy * sh < h; ++oy)
            for (int64_t ox = 0; ox < wo && ox * sw < w; ++ox) {
                const int16_t *tp = t + ((b * ho + oy) * wo + ox) * co;
                uint32_t *gp = g + ((b * h + oy * sh) * w + ox * sw) * ci;
                for (int64_t o = 0; o < co; ++o) {
                    const uint32_t tv = (uint32_t)(int32_t)tp[o];
                    if (!tv) continue;
                    const uint32_t *wp = wk + o * ci;
                    for (int64_t k = 0; k < ci; ++k) gp[k] += tv * wp[k];
                }
            }
    free(wk);
    return 0;
}

/* trainer Mask step: out = q where lo < y < hi, else 0 */
void tt_h_mask_s8(const int8_t *q, const int8_t *y, int64_t n, int64_t lo, int64_t hi, int8_t *out)
{
    /* int8 y against bounds clamped to [-129, 128]: the same comparisons */
    const int32_t l = lo < -129 ? -129 : lo > 128 ? 128 : (int32_t)lo;
    const int32_t h = hi < -129 ? -129 : hi > 128 ? 128 : (int32_t)hi;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t v = y[i];
        out[i] = (int8_t)(q[i] & -(int8_t)((v > l) & (v < h)));
    }
}

/* grad_ops.prescale: int16(requantize(q, mult[ch], shift[ch])), q int8 [m, c] */
int tt_h_prescale_s16(const int8_t *q, int64_t m, int64_t c, const int32_t *mult,
                      const int32_t *shift, int16_t *out)
{
    if (!shifts_ok(shift, c)) return -1;
    int64_t *mm = malloc((size_t)(c > 0 ? c : 1) * 3 * sizeof(int64_t));
    if (!mm) return -1;
    int64_t *rr = mm + c, *tt = rr + c;
    for (int64_t j = 0; j < c; ++j) {
        mm[j] = mult[j];
        tt[j] = 31 - (int64_t)shift[j];
        rr[j] = (int64_t)1 << (tt[j] - 1);
    }
    for (int64_t i = 0; i < m; ++i) {
        const int8_t *qi = q + i * c;
        int16_t *oi = out + i * c;
        /* |q * mult| < 2^38: no wrap */
        for (int64_t j = 0; j < c; ++j) oi[j] = (int16_t)((qi[j] * mm[j] + rr[j]) >> tt[j]);
    }
    free(mm);
    return 0;
}

/* ops.add (per-tensor parameters): clamp(rq(rq((x1 - z1) << ls, m1, s1) + rq((x2 - z2) << ls,
   m2, s2), mo, so) + zo) */
int tt_h_add_s8(const int8_t *x1, const int8_t *x2, int64_t n, int64_t z1, int64_t z2, int64_t ls,
                int64_t m1, int64_t s1, int64_t m2, int64_t s2, int64_t mo, int64_t so, int64_t zo,
                int64_t lo, int64_t hi, int8_t *out)
{
    if (s1 < -31 || s1 > 30 || s2 < -31 || s2 > 30 || so < -31 || so > 30 || ls < 0 || ls > 23)
        return -1;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t a = rq(((int64_t)x1[i] - z1) * ((int64_t)1 << ls), m1, s1);
        const int64_t b = rq(((int64_t)x2[i] - z2) * ((int64_t)1 << ls), m2, s2);
        out[i] = clamp8(rq(a + b, mo, so) + zo, lo, hi);
    }
    return 0;
}

/* grad_ops.grad_range_int's statistics of int32 a: max |a| and sum |a| */
static void abs_stats(const int32_t *a, int64_t n, int64_t *max_out, int64_t *sum_out)
{
    uint32_t mx = 0;
    uint64_t sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t v = a[i] < 0 ? -(uint32_t)a[i] : (uint32_t)a[i];
        mx = v > mx ? v : mx;
        sum += v;
    }
    *max_out = (int64_t)mx;
    *sum_out = (int64_t)sum;
}

/* grad_ops.requant_grad's values: int8(clip(requantize(a, mult, shift), -qmax, qmax)) */
static void requant_clip(const int32_t *a, int64_t n, int64_t mult, int64_t shift, int64_t qmax,
                         int8_t *out)
{
    const int64_t total = 31 - shift, rnd = (int64_t)1 << (total - 1);
    const int32_t m = (int32_t)mult, qm = (int32_t)qmax;
    for (int64_t i = 0; i < n; ++i) {
        /* |a * m| < 2^62: no wrap */
        int64_t v = ((int64_t)a[i] * m + rnd) >> total;
        v = v < -qm ? -qm : v;
        v = v > qm ? qm : v;
        out[i] = (int8_t)v;
    }
}

/* grad_ops.q31_of_f32 of a float32 (bits): 0 and mult, shift set; -1 when the reference
   raises (negative, not finite, or >= 2^30) */
static int q31(float x, int64_t *mult, int64_t *shift)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    const int64_t exp = (bits >> 23) & 0xFF;
    if (exp == 0xFF || ((bits >> 31) && (bits & 0x7FFFFFFF))) return -1;
    const int64_t s = exp - 126;
    if (exp == 0 || s < -31) {   /* zero, -0.0, denormals and values below 2^-32 */
        *mult = 0;
        *shift = 0;
        return 0;
    }
    if (bits >> 31 || s > 30) return -1;
    *mult = (int64_t)((bits & 0x7FFFFF) | 0x800000) << 7;
    *shift = s;
    return 0;
}

/* grad_ops.grad_range_int + requant_grad (the trainer's RequantGrad step) of int32 a:
   the range r by `kind` (0: max >> k, 1: 3 * max >> k, 2: k * (sum // n) of |a|), then
   q = int8(clip(requantize(a, q31(qmax / r)), -qmax, qmax)) and the scale
   acc_scale * (r / qmax), all float32 operations as the reference's (r <= 0: zeros and
   acc_scale). Returns r, or -1 when the reference would raise (nothing written). */
int64_t tt_h_requant_grad_s32(const int32_t *a, int64_t n, int64_t kind, int64_t k, int64_t qmax,
                              float acc_scale, int8_t *out, float *scale_out)
{
    int64_t mx, sum, r;
    abs_stats(a, n, &mx, &sum);
    if (n == 0) r = 0;
    else if (kind == 0) r = mx >> k;
    else if (kind == 1) r = (3 * mx) >> k;
    else r = k * (sum / n);
    if (r <= 0) {
        memset(out, 0, (size_t)n);
        *scale_out = acc_scale;
        return r;
    }
    const float inv = (float)qmax / (float)r;
    int64_t m, sh;
    if (q31(inv, &m, &sh)) return -1;
    requant_clip(a, n, m, sh, qmax, out);
    const float ratio = (float)r / (float)qmax;
    *scale_out = acc_scale * ratio;
    return r;
}

/* grad_ops.bias_grad_acc + sgd_update_bias: gb[j] = int32(sum_i gy[i, j]) for j < k,
   b[j] = sat_int32(b[j] - round_nearest(gb[j] * f[j])), in place; gy int8 [m, c].
   Returns -1 (b untouched) when a factor is one the reference refuses. */
int tt_h_bias_update(const int8_t *gy, int64_t m, int64_t c, int64_t k, const float *f, int32_t *b,
                     int32_t *gb_out)
{
    int64_t *mult = malloc((size_t)(k > 0 ? k : 1) * 2 * sizeof(int64_t));
    int64_t *gb = calloc((size_t)(k > 0 ? k : 1), sizeof(int64_t));
    if (!mult || !gb) {
        free(mult); free(gb);
        return -2;
    }
    int64_t *shift = mult + k;
    for (int64_t j = 0; j < k; ++j)
        if (q31(f[j], &mult[j], &shift[j])) {
            free(mult); free(gb);
            return -1;
        }
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) gb[j] += gy[i * c + j];
    for (int64_t j = 0; j < k; ++j) {
        const int64_t g = (int32_t)(uint32_t)(uint64_t)gb[j];   /* astype(int32) */
        gb_out[j] = (int32_t)g;
        const int64_t total = 31 - shift[j];
        const int64_t d = (int64_t)((uint64_t)g * (uint64_t)mult[j] + ((uint64_t)1 << (total - 1))) >> total;
        int64_t v = (int64_t)b[j] - d;
        v = v < INT32_MIN ? INT32_MIN : v;
        v = v > INT32_MAX ? INT32_MAX : v;
        b[j] = (int32_t)v;
    }
    free(mult); free(gb);
    return 0;
}
