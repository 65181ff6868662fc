/* Self-test firmware: says hello on the serial line, times a small integer loop with
   the board's cycle/instruction counter and reports it out of band. Used by
   `make build` and `make demo` until a model is compiled in. */
#include <stdint.h>
#include "tt_board.h"
#include "tt_report.h"

__attribute__((noipa)) static int32_t dot_s8(const int8_t *a, const int8_t *b, int n)
{
    int32_t acc = 0;
    for (int i = 0; i < n; ++i) acc += (int32_t)a[i] * b[i];
    return acc;
}

int main(void)
{
    static int8_t a[1024], b[1024];
    for (int i = 0; i < 1024; ++i) {
        a[i] = (int8_t)(i * 7);
        b[i] = (int8_t)(i * 13 + 1);
    }
    board_puts("tinytrain selftest on ");
    board_puts(board_name);
    board_puts("\r\n");
    uint32_t t0 = board_cycles();
    int32_t acc = dot_s8(a, b, 1024);
    uint32_t t1 = board_cycles();
    tt_report_timed("", "dot_s8_1024", -1, t1 - t0);
    char buf[16];
    board_puts("checksum ");
    buf[tt_put_dec(buf, (uint32_t)acc)] = 0;
    board_puts(buf);
    board_puts("\r\n");
    return 0;
}
