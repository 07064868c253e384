/*
 * startup_mps2.c - the vector table of the ARM test image and what a fault prints.
 *
 * Reset goes to newlib's rdimon crt0 (_start), which sets up the C library over
 * semihosting and calls main. A fault (a bad pointer, an unaligned access the core traps)
 * is reported with the faulting PC and the image exits with code 3, so CI sees it at
 * once instead of a hung emulator. mps2__trap_unaligned() makes the Cortex-M3 fault on an
 * unaligned load or store, as the RP2040's Cortex-M0+ always does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern void _start(void);
extern uint32_t __stack_top;

void mps2__fault_report(const uint32_t *frame);

/* The exception frame is on the main stack: hand its address to C. */
__attribute__((naked)) static void mps2__fault(void)
{
    __asm volatile("mrs r0, msp\n"
                   "ldr r1, =mps2__fault_report\n"
                   "bx r1\n");
}

void mps2__fault_report(const uint32_t *frame)
{
    printf("fault (an unaligned access, a bad pointer, a stack overflow): pc=0x%08lx "
           "lr=0x%08lx\n", (unsigned long)frame[6], (unsigned long)frame[5]);
    fflush(stdout);
    _Exit(3);
}

/* SVC does nothing: taking it is what makes QEMU apply a new CCR to the code it runs. */
static void mps2__svc(void) {}

void mps2__trap_unaligned(void)
{
    *(volatile uint32_t *)0xE000ED14u |= 1u << 3; /* SCB->CCR.UNALIGN_TRP */
    __asm volatile("svc 0" ::: "memory");
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top,        /* initial stack; crt0 moves it where semihosting says */
    (const void *)_start, /* reset */
    (const void *)mps2__fault, /* NMI */
    (const void *)mps2__fault, /* HardFault */
    (const void *)mps2__fault, /* MemManage (M3) */
    (const void *)mps2__fault, /* BusFault (M3) */
    (const void *)mps2__fault, /* UsageFault (M3): unaligned access, with UNALIGN_TRP */
    NULL, NULL, NULL, NULL,
    (const void *)mps2__svc,   /* SVCall */
};
