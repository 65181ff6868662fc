/* Startup shared by the Cortex-M boards: vector table, reset handler (copy .data,
   zero .bss, enable the FPU), fault handlers that report and exit non-zero, and an
   MPU guard region below the stack so an overflow faults instead of silently
   running into other memory.

   Linker-script symbols used: _sidata _sdata _edata _sbss _ebss _stack_guard
   _stack_top (see boards/<name>/link.ld). */
#include <stdint.h>
#include "cortexm.h"
#include "tt_board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_guard, _stack_top;
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

/* Exit codes used for faults (documented in README and used by tests/harness.py). */
#define TT_EXIT_FAULT          100
#define TT_EXIT_STACK_OVERFLOW 101

__attribute__((section(".isr_vector"), used))
const void *const tt_vectors[16] = {
    &_stack_top,          /* initial MSP */
    Reset_Handler,
    Fault_Handler,        /* NMI */
    Fault_Handler,        /* HardFault */
    Fault_Handler,        /* MemManage */
    Fault_Handler,        /* BusFault */
    Fault_Handler,        /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,      /* SVCall */
    Default_Handler,      /* DebugMonitor */
    0,
    Default_Handler,      /* PendSV */
    Default_Handler,      /* SysTick */
};

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* FPU: full access to CP10/CP11 before any floating-point instruction. */
    SCB_CPACR |= (0xFu << 20);
    tt_dsb();
    tt_isb();
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; ++dst) *dst = 0;
    SCB_VTOR = (uint32_t)(uintptr_t)tt_vectors;
    cortexm_enable_faults();
    board_init();
    cortexm_mpu_stack_guard();
    board_exit(main());
}

void cortexm_enable_faults(void)
{
    SCB_SHCSR |= SHCSR_MEMFAULTENA | SHCSR_BUSFAULTENA | SHCSR_USGFAULTENA;
    SCB_CCR |= CCR_DIV_0_TRP;
    tt_dsb();
    tt_isb();
}

/* No-access MPU regions under the stack, which grows down onto them: 32 bytes at the
   bottom of the stack, and, because a large stack frame can step over a small guard,
   the 64 MB below RAM (the stack starts at the bottom of RAM on every Cortex-M board;
   unmapped addresses there are not guaranteed to fault, e.g. on QEMU they read as
   zero and ignore writes). */
#define GUARD_LOW_LOG2 26u
void cortexm_mpu_stack_guard(void)
{
    if (((MPU_TYPE >> 8) & 0xFFu) < 2u) return; /* no MPU */
    uint32_t guard = (uint32_t)(uintptr_t)&_stack_guard;
    MPU_RNR = 0;
    MPU_RBAR = guard;
    MPU_RASR = MPU_RASR_XN | MPU_RASR_AP_NONE | MPU_RASR_SIZE(5) | MPU_RASR_ENABLE;
    if ((guard & ((1u << GUARD_LOW_LOG2) - 1u)) == 0u && guard >= (1u << GUARD_LOW_LOG2)) {
        MPU_RNR = 1;
        MPU_RBAR = guard - (1u << GUARD_LOW_LOG2);
        MPU_RASR = MPU_RASR_XN | MPU_RASR_AP_NONE | MPU_RASR_SIZE(GUARD_LOW_LOG2) |
                   MPU_RASR_ENABLE;
    }
    MPU_CTRL = MPU_CTRL_PRIVDEFENA | MPU_CTRL_ENABLE;
    tt_dsb();
    tt_isb();
}

static void put_hex(uint32_t v)
{
    char buf[11] = "0x";
    for (int i = 0; i < 8; ++i) {
        unsigned d = (v >> (28 - 4 * i)) & 0xFu;
        buf[2 + i] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    }
    buf[10] = 0;
    board_puts(buf);
}

__attribute__((used, noreturn)) void tt_fault_dispatch(uint32_t ipsr)
{
    uint32_t cfsr = SCB_CFSR, mmfar = SCB_MMFAR, hfsr = SCB_HFSR;
    uint32_t guard = (uint32_t)(uintptr_t)&_stack_guard;
    int overflow = (cfsr & CFSR_MSTKERR) ||
                   ((cfsr & (1u << 7)) && mmfar < guard + 32u &&
                    mmfar >= guard - (1u << GUARD_LOW_LOG2));
    MPU_CTRL = 0; /* let the report use the whole stack */
    board_puts(overflow ? "\r\n*** STACK OVERFLOW (MPU guard hit)" : "\r\n*** FAULT");
    board_puts(" exception=");
    put_hex(ipsr & 0x1FFu);
    board_puts(" CFSR=");
    put_hex(cfsr);
    board_puts(" HFSR=");
    put_hex(hfsr);
    board_puts(" MMFAR=");
    put_hex(mmfar);
    board_puts("\r\n");
    board_exit(overflow ? TT_EXIT_STACK_OVERFLOW : TT_EXIT_FAULT);
}

/* Naked: the stack may be exhausted, so move MSP back to the top before any C. */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm volatile(
        "ldr r1, =_stack_top \n"
        "msr msp, r1         \n"
        "isb                 \n"
        "mrs r0, ipsr        \n"
        "b tt_fault_dispatch \n");
}

void Default_Handler(void)
{
    Fault_Handler();
}
