/* Board abstraction: every board folder (boards/<name>/) implements these. */
#ifndef TT_BOARD_H
#define TT_BOARD_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called by the startup code before main(): clocks, UART, timer, MPU guard. */
void board_init(void);

/* Blocking write of n bytes to the board's serial line (UART / pty / stdout). */
void board_uart_write(const void *buf, size_t n);
/* Blocking read of one byte from the serial line; returns -1 on end of input
   (host build) or never returns -1 on hardware. */
int board_uart_getc(void);

/* Free-running 32-bit counter. stm32f746: DWT cycles. qemu-mps2-an500: CMSDK timer
   ticks * 40 (= instructions under -icount shift=0). host: nanoseconds. */
uint32_t board_cycles(void);

/* Terminate: semihosting exit code on QEMU, exit() on host, breakpoint + reset loop
   on hardware. */
void board_exit(int code) __attribute__((noreturn));

/* Out-of-band report line (measurements, diagnostics), kept off the serial protocol:
   QEMU semihosting console, stderr on the host build, the UART on hardware. */
void board_report(const char *line);

/* Name of the board, e.g. "qemu-mps2-an500". */
extern const char board_name[];

/* Convenience: write a NUL-terminated string. */
void board_puts(const char *s);

#ifdef __cplusplus
}
#endif
#endif
