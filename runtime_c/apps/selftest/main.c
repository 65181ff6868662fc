/* Self-test firmware: says hello on the serial line, times a small integer loop with
   the board's cycle/instruction counter and reports it out of band. Used by
   `make build` and `make demo` until a model is compiled in. */
#include <stdint.h>
#include "tt_board.h"

__attribute__((noipa)) static int32_t dot_s8(const int8_t *a, const int8_t *b, int n)
{
    int32_t acc = 0;
    for (int i = 0; i < n; ++i) acc += (int32_t)a[i] * b[i];
    return acc;
}

static void put_u32(char *buf, uint32_t v)
{
    char d[12];
    int n = 0;
    do { d[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) *buf++ = d[--n];
    *buf = 0;
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
    char line[64] = "TT_TIMED dot_s8_1024 ";
    put_u32(line + 21, t1 - t0);
    char *e = line;
    while (*e) ++e;
    *e++ = '\n';
    *e = 0;
    board_report(line);
    char buf[16];
    board_puts("checksum ");
    put_u32(buf, (uint32_t)acc);
    board_puts(buf);
    board_puts("\r\n");
    return 0;
}
