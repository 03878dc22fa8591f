/*
 * dlopen_host.c - mode (b) host: does NOT link the runtime. It opens libdriver_module.so
 * (found through LD_LIBRARY_PATH) with RTLD_NOW | RTLD_LOCAL, so the runtime arrives as a
 * dependency of a locally scoped module, and runs its driver_main with our argv.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    void *module = dlopen("libdriver_module.so", RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        fprintf(stderr, "dlopen_host: dlopen(libdriver_module.so): %s\n", dlerror());
        return 3;
    }
    void *sym = dlsym(module, "driver_main");
    if (!sym) {
        fprintf(stderr, "dlopen_host: dlsym(driver_main): %s\n", dlerror());
        return 3;
    }
    int (*driver_main)(int, char **);
    memcpy(&driver_main, &sym, sizeof driver_main);
    return driver_main(argc - 1, argv + 1);
}
