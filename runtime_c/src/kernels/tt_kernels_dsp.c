/* Which variant of the forward kernels this build compiled (tt_kernels.h). */
#include "tt_kernels.h"
#include "tt_simd.h"

int tt_kernels_dsp(void)
{
    return TT_DSP;
}
