/* Prints under which symbol version a real ROCm library exports each name:
 *   symvers LIBRARY VERSIONS NAME...
 * opens LIBRARY with dlopen(RTLD_NOW | RTLD_LOCAL) and prints one line per
 * NAME: "NAME absent" when dlsym finds nothing, else "NAME VERSION FILE" where
 * VERSION is the first of the comma-separated VERSIONS under which dlvsym
 * finds the same address ("other" if none does) and FILE the object that
 * defines it. tests/real_rocm.rs compares the lines with what rmcp expects. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: symvers LIBRARY VERSION[,VERSION...] NAME...\n");
        return 64;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "symvers: dlopen failed: %s\n", dlerror());
        return 65;
    }
    for (int i = 3; i < argc; i++) {
        void *def = dlsym(h, argv[i]);
        if (!def) {
            printf("%s absent\n", argv[i]);
            continue;
        }
        const char *found = "other";
        char *list = strdup(argv[2]);
        for (char *save = NULL, *v = strtok_r(list, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
            if (dlvsym(h, argv[i], v) == def) {
                found = argv[2] + (v - list);
                break;
            }
        }
        Dl_info info;
        const char *file = dladdr(def, &info) && info.dli_fname ? info.dli_fname : "?";
        const char *base = strrchr(file, '/');
        /* the version name ends at the next comma of argv[2] */
        printf("%s %.*s %s\n", argv[i], (int)strcspn(found, ","), found, base ? base + 1 : file);
        free(list);
    }
    return 0;
}
