/*
 * secure_main.c - the driver (driver.c) with a main that first prints "at_secure=N"
 * (getauxval(AT_SECURE)), so a test run as a setuid program can prove the kernel marked
 * it secure before judging what rmcp did.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/auxv.h>

#include "driver.h"

int main(int argc, char **argv)
{
    printf("at_secure=%lu\n", getauxval(AT_SECURE));
    fflush(stdout);
    return driver_main(argc - 1, argv + 1);
}
