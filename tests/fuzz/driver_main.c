/* Deterministic driver for the fuzz target (fuzz_device.c) without libFuzzer: the gcc
 * AddressSanitizer + UBSan build that tests/test_fuzz_device.py runs in `make test`.
 *
 *   fuzz_driver [-n MUTATIONS] [-s SEED] [-o CRASH_FILE] [-q] PATH...
 *
 * Runs LLVMFuzzerTestOneInput on every file of every PATH (a file, or a folder: its files
 * in name order), then on MUTATIONS inputs made from them with a fixed-seed PRNG (bit
 * flips, byte changes, insertions, deletions, truncation, block copies, splices with
 * another seed). Prints "executed N inputs (S seeds, M mutations)" and exits 0; any
 * finding aborts (the input is written to CRASH_FILE, default ./fuzz-driver-crash.bin,
 * first). Without -q the harness's summary (replies by type, errors, keys) goes to
 * stderr. C99 + POSIX (dirent). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fz_report(FILE *f);
void __sanitizer_set_death_callback(void (*callback)(void));

#define MAX_INPUT (1u << 17)

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

static blob *seeds;
static size_t n_seeds, cap_seeds;
static const char *crash_path = "fuzz-driver-crash.bin";
static const uint8_t *cur;
static size_t cur_size;

static void dump_current(void)
{
    if (!cur) return;
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    size_t off = 0;
    while (off < cur_size) {
        ssize_t k = write(fd, cur + off, cur_size - off);
        if (k <= 0) break;
        off += (size_t)k;
    }
    close(fd);
    static const char msg[] = "fuzz_driver: failing input written to the crash file\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
    cur = 0;
}

static void on_signal(int sig)
{
    dump_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void add_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    uint8_t *buf = malloc(MAX_INPUT);
    size_t n = fread(buf, 1, MAX_INPUT, f);
    fclose(f);
    if (n_seeds == cap_seeds) {
        cap_seeds = cap_seeds ? 2 * cap_seeds : 64;
        seeds = realloc(seeds, cap_seeds * sizeof *seeds);
    }
    seeds[n_seeds].data = buf;
    seeds[n_seeds].size = n;
    n_seeds++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    DIR *d = opendir(path);
    if (!d) { add_seed(path); return; }
    char **names = 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != 0) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) { cap = cap ? 2 * cap : 64; names = realloc(names, cap * sizeof *names); }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; ++i) { add_seed(names[i]); free(names[i]); }
    free(names);
}

/* xorshift64* */
static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

static size_t mutate(uint8_t *d, size_t n, size_t cap)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, 0xE5, 0x10};
    unsigned k = 1 + below(4);
    for (unsigned i = 0; i < k; ++i) {
        switch (below(8)) {
        case 0: if (n) d[below((uint32_t)n)] ^= (uint8_t)(1u << below(8)); break;
        case 1: if (n) d[below((uint32_t)n)] = (uint8_t)rnd(); break;
        case 2: if (n) d[below((uint32_t)n)] = interesting[below(sizeof interesting)]; break;
        case 3:
            if (n < cap) {
                size_t at = below((uint32_t)n + 1);
                memmove(d + at + 1, d + at, n - at);
                d[at] = (uint8_t)rnd();
                n++;
            }
            break;
        case 4:
            if (n > 1) {
                size_t at = below((uint32_t)n);
                memmove(d + at, d + at + 1, n - at - 1);
                n--;
            }
            break;
        case 5: if (n > 1) n = 1 + below((uint32_t)n - 1); break;
        case 6:
            if (n > 1) {   /* copy a block over another place */
                size_t len = 1 + below((uint32_t)(n < 64 ? n : 64));
                size_t from = below((uint32_t)(n - len + 1)), to = below((uint32_t)(n - len + 1));
                memmove(d + to, d + from, len);
            }
            break;
        default: {         /* splice: the tail of another seed */
            const blob *o = &seeds[below((uint32_t)n_seeds)];
            if (o->size > 1 && n > 1) {
                size_t at = 1 + below((uint32_t)n - 1), from = 1 + below((uint32_t)o->size - 1);
                size_t len = o->size - from;
                if (at + len > cap) len = cap - at;
                memcpy(d + at, o->data + from, len);
                n = at + len;
            }
            break;
        }
        }
    }
    return n;
}

static void run(const uint8_t *d, size_t n)
{
    cur = d;
    cur_size = n;
    LLVMFuzzerTestOneInput(d, n);
    cur = 0;
}

int main(int argc, char **argv)
{
    unsigned long mutations = 0;
    uint64_t seed = 1;
    int quiet = 0;
    int opt;
    while ((opt = getopt(argc, argv, "n:s:o:q")) != -1) {
        switch (opt) {
        case 'n': mutations = strtoul(optarg, 0, 10); break;
        case 's': seed = strtoull(optarg, 0, 10); break;
        case 'o': crash_path = optarg; break;
        case 'q': quiet = 1; break;
        default:
            fprintf(stderr, "usage: %s [-n MUTATIONS] [-s SEED] [-o CRASH_FILE] [-q] PATH...\n", argv[0]);
            return 2;
        }
    }
    for (int i = optind; i < argc; ++i) add_path(argv[i]);
    if (!n_seeds) { fprintf(stderr, "no seed inputs\n"); return 2; }
    __sanitizer_set_death_callback(dump_current);
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

    unsigned long executed = 0;
    for (size_t i = 0; i < n_seeds; ++i, ++executed) run(seeds[i].data, seeds[i].size);
    uint8_t *buf = malloc(MAX_INPUT);
    for (unsigned long m = 0; m < mutations; ++m, ++executed) {
        const blob *s = &seeds[below((uint32_t)n_seeds)];
        memcpy(buf, s->data, s->size);
        size_t n = mutate(buf, s->size, MAX_INPUT);
        run(buf, n);
    }
    free(buf);
    if (!quiet) fz_report(stderr);
    printf("executed %lu inputs (%zu seeds, %lu mutations)\n", executed, n_seeds, mutations);
    return 0;
}
