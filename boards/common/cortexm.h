/* Minimal Cortex-M7 core register definitions (System Control Block, MPU, DWT, FPU).
   Written from the ARMv7-M Architecture Reference Manual; only what the boards use. */
#ifndef TT_CORTEXM_H
#define TT_CORTEXM_H
#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* System Control Block */
#define SCB_ICSR   REG32(0xE000ED04u)
#define SCB_VTOR   REG32(0xE000ED08u)
#define SCB_AIRCR  REG32(0xE000ED0Cu)
#define SCB_CCR    REG32(0xE000ED14u)
#define SCB_SHCSR  REG32(0xE000ED24u)
#define SCB_CFSR   REG32(0xE000ED28u)
#define SCB_HFSR   REG32(0xE000ED2Cu)
#define SCB_MMFAR  REG32(0xE000ED34u)
#define SCB_BFAR   REG32(0xE000ED38u)
#define SCB_CPACR  REG32(0xE000ED88u)

#define SHCSR_MEMFAULTENA (1u << 16)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)
#define CCR_DIV_0_TRP     (1u << 4)
#define CFSR_MSTKERR      (1u << 4)   /* MemManage fault on exception entry stacking */
#define CFSR_DACCVIOL     (1u << 1)

/* MPU (PMSAv7) */
#define MPU_TYPE   REG32(0xE000ED90u)
#define MPU_CTRL   REG32(0xE000ED94u)
#define MPU_RNR    REG32(0xE000ED98u)
#define MPU_RBAR   REG32(0xE000ED9Cu)
#define MPU_RASR   REG32(0xE000EDA0u)
#define MPU_CTRL_ENABLE     (1u << 0)
#define MPU_CTRL_PRIVDEFENA (1u << 2)
#define MPU_RASR_ENABLE     (1u << 0)
#define MPU_RASR_SIZE(log2) (((uint32_t)(log2) - 1u) << 1)
#define MPU_RASR_AP_NONE    (0u << 24)
#define MPU_RASR_XN         (1u << 28)

/* Debug: DWT cycle counter */
#define DEMCR       REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL    REG32(0xE0001000u)
#define DWT_CYCCNT  REG32(0xE0001004u)
#define DWT_LAR     REG32(0xE0001FB0u)

static inline void tt_dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void tt_isb(void) { __asm volatile("isb 0xF" ::: "memory"); }

/* Shared by the Cortex-M boards (boards/common/cortexm_startup.c). */
void cortexm_mpu_stack_guard(void);
void cortexm_enable_faults(void);
void cortexm_fault_report(const char *what, uint32_t cfsr, uint32_t addr);

#endif
