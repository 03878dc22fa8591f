/*
 * launch.c - loads a code object (argv[1], built by bookworm's hipcc --genco for
 * gfx1030) with the real HIP 7.2.4's hipModuleLoadData, launches two of its kernels on the
 * model GPU with hipModuleLaunchKernel, and prints librmcp's launch ring as the C API
 * (rmcp_recent_launches, found with dlsym: librmcp is preloaded) reports it, before and
 * after hipDeviceSynchronize. Lines:
 *   call <what> rc=<n>
 *   ring <when> n=<count>
 *   launch <when> seq=<n> entry=<name> kernel=<name or (null)> demangled=<0|1>
 *          grid=x,y,z block=x,y,z completed=<0|1>
 */
#include <hip/hip_runtime_api.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmcp.h"

typedef rmcp_result (*recent_fn)(int32_t, rmcp_launch *, size_t, size_t *);

static void ring(const char *when)
{
    void *sym = dlsym(RTLD_DEFAULT, "rmcp_recent_launches");
    recent_fn recent;
    rmcp_launch l[8];
    size_t n = 0;
    if (!sym) {
        printf("ring %s missing\n", when);
        return;
    }
    memcpy(&recent, &sym, sizeof recent);
    if (recent(0, l, 8, &n) != RMCP_OK) {
        printf("ring %s error\n", when);
        return;
    }
    printf("ring %s n=%zu\n", when, n);
    for (size_t i = 0; i < n; i++)
        printf("launch %s seq=%llu entry=%s kernel=%s demangled=%d grid=%u,%u,%u block=%u,%u,%u "
               "completed=%d\n",
               when, (unsigned long long)l[i].sequence, l[i].entry_point,
               l[i].kernel_name ? l[i].kernel_name : "(null)", l[i].name_demangled, l[i].grid[0],
               l[i].grid[1], l[i].grid[2], l[i].block[0], l[i].block[1], l[i].block[2],
               l[i].completed);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    static char image[1 << 20];
    size_t len = fread(image, 1, sizeof image, f);
    fclose(f);
    if (len == 0)
        return 2;
    hipModule_t module = NULL;
    hipFunction_t fill = NULL, scale = NULL;
    hipError_t rc = hipModuleLoadData(&module, image);
    printf("call hipModuleLoadData rc=%d\n", rc);
    rc = hipModuleGetFunction(&fill, module, "_Z4fillPim");
    printf("call hipModuleGetFunction:fill rc=%d\n", rc);
    rc = hipModuleGetFunction(&scale, module, "_ZN5probe5scaleIfEEvPT_S1_");
    printf("call hipModuleGetFunction:scale rc=%d\n", rc);
    void *d = NULL;
    rc = hipMalloc(&d, 4096);
    printf("call hipMalloc rc=%d\n", rc);
    unsigned long n = 64;
    float factor = 2.0f;
    void *fill_args[] = {&d, &n};
    void *scale_args[] = {&d, &factor};
    rc = hipModuleLaunchKernel(fill, 2, 1, 1, 64, 1, 1, 0, NULL, fill_args, NULL);
    printf("call hipModuleLaunchKernel:fill rc=%d\n", rc);
    rc = hipModuleLaunchKernel(scale, 1, 2, 3, 32, 2, 1, 0, NULL, scale_args, NULL);
    printf("call hipModuleLaunchKernel:scale rc=%d\n", rc);
    /* fill again: its name is known now, so librmcp's fast path records it. */
    rc = hipModuleLaunchKernel(fill, 3, 1, 1, 16, 4, 1, 0, NULL, fill_args, NULL);
    printf("call hipModuleLaunchKernel:fill-again rc=%d\n", rc);
    ring("before-sync");
    rc = hipDeviceSynchronize();
    printf("call hipDeviceSynchronize rc=%d\n", rc);
    ring("after-sync");
    fflush(stdout);
    return 0;
}
