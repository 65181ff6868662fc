/* qemu-mps2-an500: QEMU's MPS2 AN500 machine (Cortex-M7), the emulated stand-in for the
   STM32F746. CMSDK APB UART0 at 0x40004000, CMSDK APB timer0 at 0x40000000 (25 MHz
   PCLK), semihosting for the exit code and for out-of-band reports. */
#include <stdint.h>
#include "cortexm.h"
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

#define SYS_WRITE0          0x04u
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
