/* Which variant of the training kernels this build compiled (tt_train_kernels.h). */
#include "tt_grad_core.h"

int tt_train_kernels_dsp(void) { return TT_DSP; }
