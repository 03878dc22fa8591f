/* Opens a module with dlopen(RTLD_NOW | RTLD_LOCAL), as CPython opens
 * extension modules such as torch's, and runs its probe_main. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: host MODULE.so\n");
        return 64;
    }
    void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "host: dlopen failed: %s\n", dlerror());
        return 65;
    }
    int (*probe_main)(void) = (int (*)(void))dlsym(handle, "probe_main");
    if (!probe_main) {
        fprintf(stderr, "host: no probe_main: %s\n", dlerror());
        return 66;
    }
    printf("host: module opened RTLD_LOCAL\n");
    return probe_main();
}
