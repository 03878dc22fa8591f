/* The C API on live data: linked to librmcp ahead of the HIP runtime (the
 * test double), no LD_PRELOAD. Built with -std=c99 -Wall -Wextra -Werror. */
#include "rmcp.h"

#include <stdio.h>
#include <string.h>

int hipHostMalloc(void **ptr, size_t size, unsigned int flags);
int hipHostFree(void *ptr);

/* Kernel launches as hipcc-built code makes them (the double records them). */
typedef struct {
  uint32_t x, y, z;
} dim3;
void __hipRegisterFunction(void **modules, const void *hostFunction, char *deviceFunction,
                           const char *deviceName, unsigned int threadLimit, void *tid,
                           void *bid, void *blockDim, void *gridDim, int *wSize);
int hipLaunchKernel(const void *f, dim3 grid, dim3 block, void **args, size_t shared,
                    void *stream);
int hipDeviceSynchronize(void);
static char stub_a, stub_b; /* host stubs */

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "api_live: failed: %s (line %d)\n", #cond, __LINE__); \
      return 1;                                                            \
    }                                                                      \
  } while (0)

int main(void) {
  void *p = NULL;
  rmcp_address_state state;
  rmcp_allocation a;
  uint64_t calls = 0, rewritten = 0;
  char text[1024];

  CHECK(hipHostMalloc(&p, 4096, 0) == 0);
  CHECK(rmcp_lookup((char *)p + 100, &state, &a) == RMCP_OK);
  CHECK(state == RMCP_ADDRESS_LIVE);
  CHECK(a.base == (size_t)p && a.size == 4096);
  CHECK(strcmp(a.entry_point, "hipHostMalloc") == 0);
  CHECK(a.requested_flags == 0 && a.applied_flags == 0x80000000u && a.rewritten == 1);
  CHECK(a.device == -1 && a.freed_ns_ago == 0);
  CHECK(rmcp_stats_get("hipHostMalloc", &calls, &rewritten) == RMCP_OK);
  CHECK(calls == 1 && rewritten == 1);
  CHECK(rmcp_describe_address((char *)p + 100, text, sizeof text, NULL) == RMCP_OK);
  printf("live: %s\n", text);

  CHECK(hipHostFree(p) == 0);
  CHECK(rmcp_lookup((char *)p + 100, &state, &a) == RMCP_OK);
  CHECK(state == RMCP_ADDRESS_FREED);
  CHECK(a.base == (size_t)p);
  CHECK(rmcp_describe_address((char *)p + 100, text, sizeof text, NULL) == RMCP_OK);
  printf("freed: %s\n", text);

  {
    dim3 g1 = {64, 2, 1}, b1 = {256, 1, 1}, g2 = {8, 1, 1}, b2 = {32, 1, 1};
    rmcp_launch l[4];
    size_t n = 99;
    char name_a[] = "_Z6vecAddPfPKfS1_i", name_b[] = "_Z5probePi";
    __hipRegisterFunction(NULL, &stub_a, name_a, name_a, 0, NULL, NULL, NULL, NULL, NULL);
    __hipRegisterFunction(NULL, &stub_b, name_b, name_b, 0, NULL, NULL, NULL, NULL, NULL);
    CHECK(rmcp_recent_launches(0, l, 4, &n) == RMCP_OK && n == 0);
    CHECK(hipLaunchKernel(&stub_a, g1, b1, NULL, 0, NULL) == 0);
    CHECK(hipDeviceSynchronize() == 0);
    CHECK(hipLaunchKernel(&stub_b, g2, b2, NULL, 0, NULL) == 0);
    /* NULL checks and range checks leave the out-parameters alone. */
    n = 99;
    CHECK(rmcp_recent_launches(0, l, 4, NULL) == RMCP_ERR_NULL_ARGUMENT);
    CHECK(rmcp_recent_launches(0, NULL, 4, &n) == RMCP_ERR_NULL_ARGUMENT && n == 99);
    CHECK(rmcp_recent_launches(-2, l, 4, &n) == RMCP_ERR_INVALID_ARGUMENT && n == 99);
    CHECK(rmcp_recent_launches(0, NULL, 0, &n) == RMCP_OK && n == 0);
    CHECK(rmcp_recent_launches(0, l, 1, &n) == RMCP_OK && n == 1);
    CHECK(l[0].handle == (const void *)&stub_b);
    CHECK(rmcp_recent_launches(-1, l, 4, &n) == RMCP_OK && n == 2);
    /* Newest first: probe (not yet synchronised), then vecAdd (synchronised). */
    CHECK(l[0].sequence == 1 && l[1].sequence == 0 && l[0].device == 0);
    CHECK(strcmp(l[0].entry_point, "hipLaunchKernel") == 0);
    CHECK(l[0].kernel_name && strcmp(l[0].kernel_name, "probe(int*)") == 0);
    CHECK(l[1].kernel_name &&
          strcmp(l[1].kernel_name, "vecAdd(float*, float const*, float const*, int)") == 0);
    CHECK(l[0].name_demangled == 1 && l[0].completed == 0 && l[1].completed == 1);
    CHECK(l[1].grid[0] == 64 && l[1].grid[1] == 2 && l[1].grid[2] == 1);
    CHECK(l[1].block[0] == 256 && l[1].block[1] == 1 && l[1].block[2] == 1);
    CHECK(l[0].stream == NULL && l[0].thread != 0);
    printf("launches: %s; %s\n", l[0].kernel_name, l[1].kernel_name);
  }
  return 0;
}
