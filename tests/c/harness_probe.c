/* Probe firmware for the test harness (tests/test_harness.py).
   PROBE_MODE 0: echo. Reads 0x00-delimited frames from the serial line and sends each
                 back reversed and delimited; an empty frame ends the session, after
                 a timed loop whose instruction count is reported out of band.
   PROBE_MODE 1: fault (undefined instruction) -> the fault handler exits non-zero.
   PROBE_MODE 2: unbounded recursion -> the MPU stack guard must catch it.
   PROBE_MODE 3: exit with code 42 after one line of output. */
#include <stdint.h>
#include "tt_board.h"

#ifndef PROBE_MODE
#define PROBE_MODE 0
#endif

__attribute__((noipa)) static uint32_t timed_loop(uint32_t n)
{
    uint32_t x = 1;
    for (uint32_t i = 0; i < n; ++i) x = x * 1664525u + 1013904223u;
    return x;
}

static void report_u32(const char *prefix, uint32_t v)
{
    char line[80];
    int k = 0;
    while (prefix[k] && k < 60) { line[k] = prefix[k]; ++k; }
    char d[12];
    int n = 0;
    do { d[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) line[k++] = d[--n];
    line[k++] = '\n';
    line[k] = 0;
    board_report(line);
}

__attribute__((noipa)) static int recurse(volatile int depth)
{
    volatile uint8_t pad[64];
    pad[0] = (uint8_t)depth;
    return recurse(depth + 1) + pad[0];
}

int main(void)
{
#if PROBE_MODE == 0
    static uint8_t frame[512];
    for (;;) {
        int n = 0;
        for (;;) {
            int c = board_uart_getc();
            if (c < 0) return 3;
            if (c == 0) break;
            if (n < (int)sizeof frame) frame[n++] = (uint8_t)c;
        }
        if (n == 0) break;
        for (int i = 0; i < n / 2; ++i) {
            uint8_t t = frame[i];
            frame[i] = frame[n - 1 - i];
            frame[n - 1 - i] = t;
        }
        frame[n] = 0;
        board_uart_write(frame, (size_t)n + 1);
    }
    uint32_t t0 = board_cycles();
    uint32_t r = timed_loop(10000);
    uint32_t t1 = board_cycles();
    report_u32("TT_TIMED loop10000 ", t1 - t0);
    return (int)(r & 0);
#elif PROBE_MODE == 1
    board_puts("about to fault\r\n");
    __asm volatile("udf #0");
    return 0;
#elif PROBE_MODE == 2
    board_puts("about to overflow\r\n");
    return recurse(0);
#else
    board_puts("exiting with 42\r\n");
    return 42;
#endif
}
