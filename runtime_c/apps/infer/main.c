/* Inference firmware: a compiled model (tt_model.h) behind a minimal serial loop.
 *   host -> 'I' + TT_MODEL_INPUT_BYTES input bytes (NHWC int8)
 *   board <- 'R' + TT_MODEL_OUTPUT_BYTES logits + uint32 LE cycles of the forward pass
 *   host -> 'Q'  : exit 0        host -> 'P' : per-step cycles as report lines
 * (The full training protocol with framing and CRCs is a separate application.) */
#include <stdint.h>
#include "tt_board.h"
#include "tt_model.h"
#include "tt_report.h"

static void put_u32_le(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    board_uart_write(b, 4);
}

int main(void)
{
    for (;;) {
        int c = board_uart_getc();
        if (c < 0 || c == 'Q') return 0;
        if (c == 'P') {
            for (int i = 0; i < TT_MODEL_STEPS; ++i)
                tt_report_timed("step:", tt_model_step_names[i], -1, tt_model_step_cycles[i]);
            continue;
        }
        if (c != 'I') continue;
        int8_t *x = tt_model_input();
        for (int i = 0; i < TT_MODEL_INPUT_BYTES; ++i) {
            int b = board_uart_getc();
            if (b < 0) return 2;
            x[i] = (int8_t)b;
        }
        uint32_t t0 = board_cycles();
        tt_model_forward();
        uint32_t t1 = board_cycles();
        board_uart_write("R", 1);
        board_uart_write(tt_model_output(), TT_MODEL_OUTPUT_BYTES);
        put_u32_le(t1 - t0);
    }
}
