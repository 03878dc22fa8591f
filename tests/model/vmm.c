/* The VMM sequence PyTorch's expandable segments make for one segment
 * (reserve, then per 2 MiB piece create, map, set access; shrink: unmap,
 * release; free), on the real HIP 7.2.4 and the model GPU. Prints one
 * "<call> rc=<code>" line per call, and the device's
 * hipDeviceAttributeVirtualMemoryManagementSupported first: PyTorch uses
 * expandable segments only where it is 1. tests/model_gpu.rs runs it with
 * and without librmcp.so. */
#include <hip/hip_runtime_api.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    int n = 0, vmm = -1;
    int rc = (int)hipGetDeviceCount(&n);
    printf("hipGetDeviceCount rc=%d count=%d\n", rc, n);
    rc = (int)hipSetDevice(0);
    printf("hipSetDevice rc=%d\n", rc);
    rc = (int)hipDeviceGetAttribute(&vmm, hipDeviceAttributeVirtualMemoryManagementSupported, 0);
    printf("hipDeviceGetAttribute(VirtualMemoryManagementSupported) rc=%d value=%d\n", rc, vmm);
    hipMemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = hipMemAllocationTypePinned;
    prop.location.type = hipMemLocationTypeDevice;
    prop.location.id = 0;
    size_t size = (size_t)64 << 20, piece = (size_t)2 << 20;
    void *va = NULL;
    rc = (int)hipMemAddressReserve(&va, size, 0, NULL, 0);
    printf("hipMemAddressReserve rc=%d\n", rc);
    hipMemGenericAllocationHandle_t h = NULL;
    rc = (int)hipMemCreate(&h, piece, &prop, 0);
    printf("hipMemCreate rc=%d\n", rc);
    printf("hipMemMap rc=%d\n", (int)hipMemMap(va, piece, 0, h, 0));
    hipMemAccessDesc d;
    memset(&d, 0, sizeof d);
    d.location = prop.location;
    d.flags = hipMemAccessFlagsProtReadWrite;
    printf("hipMemSetAccess rc=%d\n", (int)hipMemSetAccess(va, piece, &d, 1));
    printf("hipMemUnmap rc=%d\n", (int)hipMemUnmap(va, piece));
    printf("hipMemRelease rc=%d\n", (int)hipMemRelease(h));
    printf("hipMemAddressFree rc=%d\n", (int)hipMemAddressFree(va, size));
    return 0;
}
