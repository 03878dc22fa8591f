/* The C API on live data: linked to librmcp ahead of the HIP runtime (the
 * test double), no LD_PRELOAD. Built with -std=c99 -Wall -Wextra -Werror. */
#include "rmcp.h"

#include <stdio.h>
#include <string.h>

int hipHostMalloc(void **ptr, size_t size, unsigned int flags);
int hipHostFree(void *ptr);

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
  return 0;
}
