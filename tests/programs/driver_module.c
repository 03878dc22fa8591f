/*
 * driver_module.c - together with driver.c forms libdriver_module.so, mode (b): a module
 * linked to the runtime that the host opens with dlopen(RTLD_LOCAL), the way CPython imports
 * torch. From a library preloaded into such a process, dlsym(RTLD_NEXT, "hipMalloc") is
 * NULL, while the module's own references still bind to the preloaded definitions.
 */
#include "driver.h"

/* Lets a test check which module variant (ROCm 6 or 5 runtime) was opened. */
const char *driver_module_kind(void)
{
    return "driver_module";
}
