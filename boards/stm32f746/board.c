/* stm32f746: STM32F746G-DISCO. 216 MHz from the 25 MHz HSE through the PLL (voltage
   scale 1 + over-drive, 7 flash wait states, ART + prefetch), USART1 on PA9/PB7 = the
   ST-LINK virtual COM port at 115200 8N1, DWT cycle counter. Register addresses and
   bit positions from the STM32F74x reference manual (RM0385). */
#include <stdint.h>
#include "cortexm.h"
#include "tt_board.h"

const char board_name[] = "stm32f746";

#define RCC_BASE      0x40023800u
#define RCC_CR        REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR   REG32(RCC_BASE + 0x04u)
#define RCC_CFGR      REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR   REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR   REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR   REG32(RCC_BASE + 0x44u)
#define PWR_CR1       REG32(0x40007000u)
#define PWR_CSR1      REG32(0x40007004u)
#define FLASH_ACR     REG32(0x40023C00u)
#define GPIOA_BASE    0x40020000u
#define GPIOB_BASE    0x40020400u
#define GPIO_MODER(b)   REG32((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG32((b) + 0x08u)
#define GPIO_PUPDR(b)   REG32((b) + 0x0Cu)
#define GPIO_AFRL(b)    REG32((b) + 0x20u)
#define GPIO_AFRH(b)    REG32((b) + 0x24u)
#define USART1_BASE   0x40011000u
#define USART_CR1     REG32(USART1_BASE + 0x00u)
#define USART_BRR     REG32(USART1_BASE + 0x0Cu)
#define USART_ISR     REG32(USART1_BASE + 0x1Cu)
#define USART_ICR     REG32(USART1_BASE + 0x20u)
#define USART_RDR     REG32(USART1_BASE + 0x24u)
#define USART_TDR     REG32(USART1_BASE + 0x28u)

#define HCLK_HZ  216000000u
#define PCLK2_HZ 108000000u
#define BAUD     115200u

static void clock_216mhz(void)
{
    RCC_APB1ENR |= 1u << 28;                 /* PWREN */
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14); /* VOS = scale 1 */
    RCC_CR |= 1u << 16;                      /* HSEON */
    while (!(RCC_CR & (1u << 17))) {}        /* HSERDY */
    /* PLL: HSE 25 MHz / M 25 * N 432 / P 2 = 216 MHz; Q 9 -> 48 MHz */
    RCC_PLLCFGR = 25u | (432u << 6) | (0u << 16) | (1u << 22) | (9u << 24);
    RCC_CR |= 1u << 24;                      /* PLLON */
    PWR_CR1 |= 1u << 16;                     /* ODEN */
    while (!(PWR_CSR1 & (1u << 16))) {}      /* ODRDY */
    PWR_CR1 |= 1u << 17;                     /* ODSWEN */
    while (!(PWR_CSR1 & (1u << 17))) {}      /* ODSWRDY */
    while (!(RCC_CR & (1u << 25))) {}        /* PLLRDY */
    FLASH_ACR = 7u | (1u << 8) | (1u << 9);  /* 7 WS, prefetch, ART */
    /* AHB /1, APB1 /4 (54 MHz), APB2 /2 (108 MHz) */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | (5u << 10) | (4u << 13);
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;        /* SW = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 2u) {}
}

static void gpio_af7(uint32_t base, unsigned pin)
{
    GPIO_MODER(base) = (GPIO_MODER(base) & ~(3u << (2 * pin))) | (2u << (2 * pin));
    GPIO_OSPEEDR(base) |= 3u << (2 * pin);
    GPIO_PUPDR(base) = (GPIO_PUPDR(base) & ~(3u << (2 * pin))) | (1u << (2 * pin));
    if (pin < 8) GPIO_AFRL(base) = (GPIO_AFRL(base) & ~(0xFu << (4 * pin))) | (7u << (4 * pin));
    else GPIO_AFRH(base) = (GPIO_AFRH(base) & ~(0xFu << (4 * (pin - 8)))) | (7u << (4 * (pin - 8)));
}

void board_init(void)
{
    clock_216mhz();
    RCC_AHB1ENR |= (1u << 0) | (1u << 1);    /* GPIOA, GPIOB */
    RCC_APB2ENR |= 1u << 4;                  /* USART1 */
    gpio_af7(GPIOA_BASE, 9);                 /* USART1_TX */
    gpio_af7(GPIOB_BASE, 7);                 /* USART1_RX */
    USART_BRR = (PCLK2_HZ + BAUD / 2u) / BAUD;
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;  /* TE, RE, UE */
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
}

void board_uart_write(const void *buf, size_t n)
{
    const uint8_t *p = (const uint8_t *)buf;
    while (n--) {
        while (!(USART_ISR & (1u << 7))) {}  /* TXE */
        USART_TDR = *p++;
    }
    while (!(USART_ISR & (1u << 6))) {}      /* TC */
}

int board_uart_getc(void)
{
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & (1u << 3)) USART_ICR = 1u << 3; /* clear overrun, keep going */
        if (isr & (1u << 5)) return (int)(USART_RDR & 0xFFu);
    }
}

uint32_t board_cycles(void)
{
    return DWT_CYCCNT;
}

void board_puts(const char *s)
{
    const char *e = s;
    while (*e) ++e;
    board_uart_write(s, (size_t)(e - s));
}

void board_report(const char *line)
{
    board_puts(line);
}

void board_exit(int code)
{
    /* No host to return to: report and park the core. */
    char msg[] = "\r\n*** EXIT 000\r\n";
    unsigned c = (unsigned)code & 0xFFu;
    msg[11] = (char)('0' + c / 100u);
    msg[12] = (char)('0' + (c / 10u) % 10u);
    msg[13] = (char)('0' + c % 10u);
    board_puts(msg);
    for (;;) __asm volatile("wfi");
}
