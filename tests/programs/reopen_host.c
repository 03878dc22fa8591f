/*
 * reopen_host.c - opens libdriver_module.so with dlopen(RTLD_NOW | RTLD_LOCAL), runs its
 * driver_main with argv[1..], dlcloses it, opens it again and runs the same ops again.
 * Prints "round N rc=R" after each round and "closed rc=R" after each dlclose. Exit status:
 * 0 if both rounds returned 0, 1 if one failed, 3 if the module could not be opened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int round_trip(int round, int argc, char **argv)
{
    void *module = dlopen("libdriver_module.so", RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        fprintf(stderr, "reopen_host: dlopen: %s\n", dlerror());
        return 3;
    }
    void *sym = dlsym(module, "driver_main");
    if (!sym) {
        fprintf(stderr, "reopen_host: dlsym(driver_main): %s\n", dlerror());
        return 3;
    }
    int (*driver_main)(int, char **);
    memcpy(&driver_main, &sym, sizeof driver_main);
    int rc = driver_main(argc, argv);
    printf("round %d rc=%d\n", round, rc);
    fflush(stdout);
    int crc = dlclose(module);
    printf("closed rc=%d\n", crc);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    int a = round_trip(1, argc - 1, argv + 1);
    if (a == 3)
        return 3;
    int b = round_trip(2, argc - 1, argv + 1);
    if (b == 3)
        return 3;
    return a || b ? 1 : 0;
}
