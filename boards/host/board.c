/* host: native build of the runtime for fast tests and fuzzing. The "UART" is
   stdin/stdout, or a pseudo-terminal when TT_PTY=1 is set in the environment (its
   path is printed on stderr as "TT_PTY <path>", for pyserial to open).
   Checkpoint flash: the NOR model (boards/common/nor_model.h), kept in the file named
   by TT_NOR_FILE (created erased when missing; without it the flash lives in memory
   only). TT_NOR_CUT=k cuts the power before the k-th erase/program operation,
   TT_NOR_CUT=k.5 half way through it: the process ends with TT_HOST_POWER_CUT_EXIT.
   SIGUSR1 reboots the firmware behind its open serial line: the process starts again
   (exec: RAM is lost, the checkpoint flash file is kept) on the same pseudo-terminal, as
   a board that resets while the host keeps its port open. */
#define _XOPEN_SOURCE 600
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "nor_model.h"
#include "tt_board.h"

#define TT_HOST_POWER_CUT_EXIT 86

const char board_name[] = "host";

static int fd_in = 0, fd_out = 1;

static void open_pty(void)
{
    const char *keep = getenv("TT_PTY_FD"); /* rebooted: the line is already open */
    if (keep && *keep) {
        fd_in = fd_out = atoi(keep);
        return;
    }
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

/* ---- reboot behind the open line (SIGUSR1) ---- */
extern char **environ;
static char **boot_argv;
static char *reboot_env[256];
static char reboot_fd_var[32];

static void reboot(int sig)
{
    (void)sig;
    execve("/proc/self/exe", boot_argv, reboot_env); /* async-signal-safe */
    _exit(2);
}

static void arm_reboot(void)
{
    int n = 0;
    for (char **e = environ; *e && n < 254; ++e)
        if (strncmp(*e, "TT_PTY_FD=", 10) != 0) reboot_env[n++] = *e;
    snprintf(reboot_fd_var, sizeof reboot_fd_var, "TT_PTY_FD=%d", fd_in);
    reboot_env[n++] = reboot_fd_var;
    reboot_env[n] = NULL;
    signal(SIGUSR1, reboot);
}

__attribute__((constructor)) static void host_startup(int argc, char **argv)
{
    (void)argc;
    boot_argv = argv;
    board_init();
    arm_reboot();
}

/* on the heap: the emulated flash is not part of the board's RAM (memory report) */
static uint8_t *nor;
static int nor_fd = -1;

uint8_t *board_nor_image(void) { return nor; }

void board_nor_persist(uint32_t off, uint32_t n)
{
    if (nor_fd < 0) return;
    if (pwrite(nor_fd, nor + off, n, (off_t)off) != (ssize_t)n) {
        perror("TT_NOR_FILE write");
        exit(2);
    }
}

void board_nor_power_cut(void)
{
    fprintf(stderr, "TT_POWER_CUT at flash operation %u%s\n", (unsigned)tt_nor_ops,
            tt_nor_cut_half ? " (half way)" : "");
    _exit(TT_HOST_POWER_CUT_EXIT);
}

static void open_nor(void)
{
    nor = malloc(TT_NOR_BYTES);
    if (!nor) {
        perror("flash model");
        exit(2);
    }
    memset(nor, 0xFF, TT_NOR_BYTES);
    const char *cut = getenv("TT_NOR_CUT");
    if (cut && *cut) {
        char *end;
        tt_nor_cut_at = (uint32_t)strtoul(cut, &end, 10);
        tt_nor_cut_half = *end == '.';
    }
    const char *path = getenv("TT_NOR_FILE");
    if (!path || !*path) return;
    nor_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (nor_fd < 0) {
        perror(path);
        exit(2);
    }
    ssize_t k = pread(nor_fd, nor, TT_NOR_BYTES, 0);
    if (k < 0) {
        perror(path);
        exit(2);
    }
    if ((size_t)k < TT_NOR_BYTES) { /* new (or short) file: the rest is erased flash */
        memset(nor + k, 0xFF, TT_NOR_BYTES - (size_t)k);
        board_nor_persist((uint32_t)k, (uint32_t)(TT_NOR_BYTES - (size_t)k));
    }
}

void board_init(void)
{
    const char *p = getenv("TT_PTY");
    if (p && strcmp(p, "1") == 0) open_pty();
    open_nor();
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
