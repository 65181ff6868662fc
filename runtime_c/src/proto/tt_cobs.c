/* Serial protocol: COBS framing, the streaming decoder and the encoders (tt_proto.h,
 * host/PROTOCOL.md). */
#include <string.h>
#include "tt_board.h"
#include "tt_proto.h"

/* ---- COBS ------------------------------------------------------------------------- */

void tt_cobs_restart(tt_cobs_decoder *d)
{
    d->len = 0;
    d->remaining = 0;
    d->pending_zero = 0;
    d->overflow = 0;
    d->started = 0;
}

void tt_cobs_init(tt_cobs_decoder *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    tt_cobs_restart(d);
}

static void cobs_put(tt_cobs_decoder *d, uint8_t b)
{
    if (d->len < d->cap)
        d->buf[d->len++] = b;
    else
        d->overflow = 1;
}

int tt_cobs_feed(tt_cobs_decoder *d, uint8_t byte)
{
    if (byte == 0) {
        int r;
        if (!d->started) r = TT_COBS_MORE;            /* empty frame: ignored */
        else if (d->overflow) r = -TT_ERR_TOO_LONG;
        else if (d->remaining) r = -TT_ERR_COBS;      /* block cut short */
        else r = TT_COBS_FRAME;
        if (r == TT_COBS_MORE) tt_cobs_restart(d);
        return r;
    }
    d->started = 1;
    if (d->remaining == 0) {                          /* a code byte */
        if (d->pending_zero) cobs_put(d, 0);
        d->remaining = (uint8_t)(byte - 1u);
        d->pending_zero = byte != 0xFFu;
    } else {
        cobs_put(d, byte);
        d->remaining--;
    }
    return TT_COBS_MORE;
}

size_t tt_cobs_encode(const uint8_t *data, size_t n, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0;
    for (;;) {
        size_t j = i;
        while (j < n && data[j] != 0 && j - i < 254) ++j;
        size_t run = j - i;
        if (o + 1 + run > cap) return 0;
        out[o++] = (uint8_t)(run + 1);
        memcpy(out + o, data + i, run);
        o += run;
        if (run == 254) {
            if (j >= n) break;
            i = j;                   /* full block: no zero implied */
        } else {
            if (j >= n) break;
            i = j + 1;               /* skip the zero the block ended on */
        }
    }
    return o;
}

void tt_cobs_write_frame(const uint8_t *data, size_t n)
{
    static const uint8_t zero = 0;
    size_t i = 0;
    board_uart_write(&zero, 1);
    for (;;) {
        size_t j = i;
        while (j < n && data[j] != 0 && j - i < 254) ++j;
        size_t run = j - i;
        uint8_t code = (uint8_t)(run + 1);
        board_uart_write(&code, 1);
        if (run) board_uart_write(data + i, run);
        if (j >= n) break;
        i = run == 254 ? j : j + 1;
    }
    board_uart_write(&zero, 1);
}
