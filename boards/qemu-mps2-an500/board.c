/* qemu-mps2-an500: QEMU's MPS2 AN500 machine (Cortex-M7), the emulated stand-in for the
   STM32F746. CMSDK APB UART0 at 0x40004000, CMSDK APB timer0 at 0x40000000 (25 MHz
   PCLK), semihosting for the exit code and for out-of-band reports.
   Checkpoint flash: the NOR model (boards/common/nor_model.h) in ZBT SSRAM1 above the
   1 MB that stands for the code flash (outside the 256 KB RAM budget), kept in a host
   file through semihosting when QEMU is given
   `-semihosting-config ...,arg=firmware,arg=nor=PATH`; without it the flash lives in
   memory only and starts erased. */
#include <stdint.h>
#include "cortexm.h"
#include <string.h>
#include "nor_model.h"
#include "tt_board.h"

const char board_name[] = "qemu-mps2-an500";

/* CMSDK APB UART */
#define UART0_BASE   0x40004000u
#define UART_DATA    REG32(UART0_BASE + 0x00u)
#define UART_STATE   REG32(UART0_BASE + 0x04u)
#define UART_CTRL    REG32(UART0_BASE + 0x08u)
#define UART_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TXEN    (1u << 0)
#define UART_CTRL_RXEN    (1u << 1)

/* CMSDK APB timer */
#define TIMER0_BASE  0x40000000u
#define TIMER_CTRL   REG32(TIMER0_BASE + 0x00u)
#define TIMER_VALUE  REG32(TIMER0_BASE + 0x04u)
#define TIMER_RELOAD REG32(TIMER0_BASE + 0x08u)

/* Under -icount shift=0 one instruction takes 1 ns of virtual time; the timer runs
   at 25 MHz, i.e. one tick per 40 instructions. */
#define INSNS_PER_TICK 40u

static void nor_open(void);

void board_init(void)
{
    UART_BAUDDIV = 16u; /* any value >= 16 is accepted by the model */
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;
    /* QEMU's model stops polling its character backend while RX is disabled (as it is
       at reset) and resumes only on a DATA read: read once to start receiving. */
    (void)UART_DATA;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable */
    nor_open();
}

void board_uart_write(const void *buf, size_t n)
{
    const uint8_t *p = (const uint8_t *)buf;
    while (n--) {
        while (UART_STATE & UART_STATE_TXFULL) {}
        UART_DATA = *p++;
    }
}

int board_uart_getc(void)
{
    while (!(UART_STATE & UART_STATE_RXFULL)) {}
    return (int)(UART_DATA & 0xFFu);
}

uint32_t board_cycles(void)
{
    return (0xFFFFFFFFu - TIMER_VALUE) * INSNS_PER_TICK;
}

void board_puts(const char *s)
{
    const char *e = s;
    while (*e) ++e;
    board_uart_write(s, (size_t)(e - s));
}

/* ARM semihosting call (Thumb: BKPT 0xAB). */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define SYS_OPEN            0x01u
#define SYS_CLOSE           0x02u
#define SYS_WRITE0          0x04u
#define SYS_WRITE           0x05u
#define SYS_READ            0x06u
#define SYS_SEEK            0x0Au
#define SYS_FLEN            0x0Cu
#define SYS_GET_CMDLINE     0x15u
#define SYS_EXIT            0x18u
#define SYS_EXIT_EXTENDED   0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* Out-of-band line to the QEMU console (not the UART): the harness reads these. */
void board_report(const char *s)
{
    semihost(SYS_WRITE0, s);
}

void board_exit(int code)
{
    /* Report the instruction count since reset for the harness. */
    char line[40] = "TT_INSNS ";
    uint32_t v = board_cycles();
    char digits[12];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    int k = 9;
    while (n) line[k++] = digits[--n];
    line[k++] = '\n';
    line[k] = 0;
    board_report(line);
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) semihost(SYS_EXIT_EXTENDED, block);
}

/* ---- checkpoint flash: NOR model image + semihosting file ------------------------- */
#define NOR_IMAGE ((uint8_t *)0x00100000u)
static int nor_handle = -1;

uint8_t *board_nor_image(void) { return NOR_IMAGE; }

void board_nor_persist(uint32_t off, uint32_t n)
{
    if (nor_handle < 0) return;
    uint32_t seek[2] = {(uint32_t)nor_handle, off};
    uint32_t wr[3] = {(uint32_t)nor_handle, (uint32_t)(NOR_IMAGE + off), n};
    if (semihost(SYS_SEEK, seek) != 0 || semihost(SYS_WRITE, wr) != 0) {
        board_report("TT_NOR write to the host file failed\n");
        board_exit(2);
    }
}

void board_nor_power_cut(void)
{
    board_report("TT_POWER_CUT\n");
    board_exit(86);
}

/* the value of "nor=PATH" in the semihosting command line, or NULL */
static const char *nor_path(char *buf, uint32_t cap)
{
    uint32_t args[2] = {(uint32_t)buf, cap - 1u};
    if (semihost(SYS_GET_CMDLINE, args) != 0) return 0;
    buf[args[1] < cap ? args[1] : cap - 1u] = 0;
    for (char *p = buf; *p; ++p) {
        if ((p == buf || p[-1] == ' ') && strncmp(p, "nor=", 4) == 0) {
            char *e = p + 4;
            while (*e && *e != ' ') ++e;
            *e = 0;
            return p + 4;
        }
    }
    return 0;
}

static void nor_open(void)
{
    char cmdline[160];
    memset(NOR_IMAGE, 0xFF, TT_NOR_BYTES);
    const char *path = nor_path(cmdline, sizeof cmdline);
    if (!path || !*path) return;
    uint32_t op[3] = {(uint32_t)path, 3u /* "r+b" */, (uint32_t)strlen(path)};
    int32_t h = (int32_t)semihost(SYS_OPEN, op);
    uint32_t have = 0;
    if (h < 0) {
        op[1] = 7u; /* "w+b": a new, erased chip */
        h = (int32_t)semihost(SYS_OPEN, op);
        if (h < 0) {
            board_report("TT_NOR cannot open the flash file\n");
            board_exit(2);
        }
    } else {
        uint32_t fl[1] = {(uint32_t)h};
        have = semihost(SYS_FLEN, fl);
        if (have > TT_NOR_BYTES) have = TT_NOR_BYTES;
        uint32_t rd[3] = {(uint32_t)h, (uint32_t)NOR_IMAGE, have};
        have -= semihost(SYS_READ, rd);
    }
    nor_handle = h;
    if (have < TT_NOR_BYTES) {
        memset(NOR_IMAGE + have, 0xFF, TT_NOR_BYTES - have);
        board_nor_persist(have, TT_NOR_BYTES - have);
    }
}
