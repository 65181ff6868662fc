/* Training test firmware: a compiled model with its training step behind a minimal
 * serial loop (the full protocol is in the device application).
 *   host -> 'T' label(u8) + TT_MODEL_INPUT_BYTES input bytes [+ TT_MODEL_OUTPUT_BYTES int8
 *           target bytes for an mse model without TT_MODEL_TARGET_OF_INPUT; an
 *           autoencoder's target is its input requantized, made here]
 *   board <- 'R' + TT_MODEL_OUTPUT_BYTES logits (before the update) + float32 loss
 *            + int32 return code + uint32 cycles of the step
 *   host -> 'W' : board <- every trained array (weights, biases) in tt_trained_ptr order
 *   host -> 'Q' : exit 0 */
#include <stdint.h>
#include "tt_board.h"
#include "tt_model.h"

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
        if (c == 'W') {
            for (int i = 0; i < TT_TRAINED_ARRAYS; ++i)
                board_uart_write(tt_trained_ptr[i], tt_trained_bytes[i]);
            continue;
        }
        if (c != 'T') continue;
        int label = board_uart_getc();
        int8_t *x = tt_model_input();
        for (int i = 0; i < TT_MODEL_INPUT_BYTES; ++i) {
            int b = board_uart_getc();
            if (b < 0) return 2;
            x[i] = (int8_t)b;
        }
#if defined(TT_MODEL_LOSS_MSE) && defined(TT_MODEL_TARGET_OF_INPUT)
        tt_model_target_of_input(x, tt_train_target);
#elif defined(TT_MODEL_LOSS_MSE)
        for (int i = 0; i < TT_MODEL_OUTPUT_BYTES; ++i) {
            int b = board_uart_getc();
            if (b < 0) return 2;
            tt_train_target[i] = (int8_t)b;
        }
#endif
        uint32_t t0 = board_cycles();
        int rc = tt_model_train_step(label);
        uint32_t t1 = board_cycles();
        board_uart_write("R", 1);
        board_uart_write(tt_train_logits, TT_MODEL_OUTPUT_BYTES);
        union { float f; uint32_t u; } loss = {tt_train_loss};
        put_u32_le(loss.u);
        put_u32_le((uint32_t)rc);
        put_u32_le(t1 - t0);
    }
}
