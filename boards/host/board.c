/* host: native build of the runtime for fast tests and fuzzing. The "UART" is
   stdin/stdout, or a pseudo-terminal when TT_PTY=1 is set in the environment (its
   path is printed on stderr as "TT_PTY <path>", for pyserial to open). */
#define _XOPEN_SOURCE 600
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "tt_board.h"

const char board_name[] = "host";

static int fd_in = 0, fd_out = 1;

static void open_pty(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        perror("pty");
        exit(2);
    }
    struct termios t;
    if (tcgetattr(m, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(m, TCSANOW, &t);
    }
    fprintf(stderr, "TT_PTY %s\n", ptsname(m));
    fflush(stderr);
    fd_in = fd_out = m;
}

__attribute__((constructor)) static void host_startup(void)
{
    board_init();
}

void board_init(void)
{
    const char *p = getenv("TT_PTY");
    if (p && strcmp(p, "1") == 0) open_pty();
}

void board_uart_write(const void *buf, size_t n)
{
    const char *p = (const char *)buf;
    while (n) {
        ssize_t k = write(fd_out, p, n);
        if (k <= 0) exit(3);
        p += k;
        n -= (size_t)k;
    }
}

int board_uart_getc(void)
{
    unsigned char c;
    for (;;) {
        ssize_t k = read(fd_in, &c, 1);
        if (k == 1) return c;
        if (k == 0) return -1;
        /* pty with no peer yet: wait */
        usleep(1000);
    }
}

uint32_t board_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

void board_puts(const char *s)
{
    board_uart_write(s, strlen(s));
}

void board_report(const char *line)
{
    fputs(line, stderr);
    fflush(stderr);
}

void board_exit(int code)
{
    exit(code);
}
