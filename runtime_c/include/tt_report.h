/* One timing line for the host: "TT_TIMED <prefix><name>[<idx>] <value>\n" through
 * board_report (the firmware runner parses these lines: compiler/target/runner.py).
 * idx < 0: no index. Names are cut at 80 characters. */
#ifndef TT_REPORT_H
#define TT_REPORT_H
#include <stdint.h>
#include "tt_board.h"

static inline int tt_put_dec(char *dst, uint32_t v)
{
    char d[12];
    int n = 0, k = 0;
    do { d[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) dst[k++] = d[--n];
    return k;
}

static inline void tt_report_timed(const char *prefix, const char *name, int32_t idx, uint32_t v)
{
    char line[112] = "TT_TIMED ";
    int k = 9;
    while (*prefix && k < 40) line[k++] = *prefix++;
    while (*name && k < 80) line[k++] = *name++;
    if (idx >= 0) k += tt_put_dec(line + k, (uint32_t)idx);
    line[k++] = ' ';
    k += tt_put_dec(line + k, v);
    line[k++] = '\n';
    line[k] = 0;
    board_report(line);
}
#endif
