/*
 * startup_mps2.c - the vector table of the ARM test image and what a fault prints.
 *
 * Reset goes to newlib's rdimon crt0 (_start), which sets up the C library over
 * semihosting and calls main. A fault (a bad pointer, an unaligned access the core traps)
 * is reported with the faulting PC and the image exits with code 3, so CI sees it at
 * once instead of a hung emulator.
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
    printf("HardFault: pc=0x%08lx lr=0x%08lx (arm-none-eabi-addr2line -e IMAGE ADDRESS)\n",
           (unsigned long)frame[6], (unsigned long)frame[5]);
    fflush(stdout);
    _Exit(3);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top,        /* initial stack; crt0 moves it where semihosting says */
    (const void *)_start, /* reset */
    (const void *)mps2__fault, /* NMI */
    (const void *)mps2__fault, /* HardFault */
    (const void *)mps2__fault, /* MemManage (M3) */
    (const void *)mps2__fault, /* BusFault (M3) */
    (const void *)mps2__fault, /* UsageFault (M3) */
};
