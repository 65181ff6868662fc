/* The device loop (runtime_c/src/proto/tt_device.c) for the fuzz harness, unchanged, plus
 * one function that puts its static state (decoder, reply cache, upload, STATS) back to
 * power-on, so that every fuzz input starts from the same device loop. tests/fuzz/build.py
 * compiles this file instead of tt_device.c. */
#include "../../runtime_c/src/proto/tt_device.c"

void tt_fuzz_device_loop_reset(void);

void tt_fuzz_device_loop_reset(void)
{
    memset(&g, 0, sizeof g);
}
