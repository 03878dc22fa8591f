/*
 * hooked_only.c - a HIP program whose every HIP call is one rmcp hooks (hipSetDevice,
 * hipMalloc, hipHostMalloc, hipLaunchKernel, hipDeviceSynchronize, the frees). Linked
 * `-lrmcp -lamdhip64` with the toolchain's default flags, gcc's --as-needed (Debian's
 * default) drops libamdhip64 from its NEEDED entries: every symbol it uses is defined by
 * librmcp. rmcp must still find the runtime, through the program's RUNPATH.
 *
 * Prints "<call> rc=<code>" per call; exits 0 when every call returned 0, except
 * hipLaunchKernel: its stub is registered with no runtime (that would take
 * __hipRegisterFunction, which rmcp does not hook), so the runtime's answer is
 * hipErrorInvalidDeviceFunction (98), which shows the launch reached it.
 */
#include <stdio.h>

#include "fake_rocm.h"

typedef struct {
    unsigned x, y, z;
} dim3;
hipError_t hipLaunchKernel(const void *f, dim3 grid, dim3 block, void **args, size_t shared,
                           void *stream);
hipError_t hipDeviceSynchronize(void);

static char kernel_stub;

int main(void)
{
    void *d = NULL, *h = NULL;
    dim3 one = {1, 1, 1};
    int rc[7];
    rc[0] = hipSetDevice(0);
    rc[1] = hipMalloc(&d, 4096);
    rc[2] = hipHostMalloc(&h, 4096, 0);
    rc[3] = hipLaunchKernel(&kernel_stub, one, one, NULL, 0, NULL);
    rc[4] = hipDeviceSynchronize();
    rc[5] = hipHostFree(h);
    rc[6] = hipFree(d);
    static const char *const names[] = {"hipSetDevice", "hipMalloc", "hipHostMalloc",
                                        "hipLaunchKernel", "hipDeviceSynchronize",
                                        "hipHostFree", "hipFree"};
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        printf("%s rc=%d\n", names[i], rc[i]);
        bad |= rc[i] != (i == 3 ? 98 : 0);
    }
    return bad;
}
