/* Exercises the C API through include/rmcp.h alone, built with
 * -std=c99 -Wall -Wextra -Werror -pedantic. Prints one line per check so the
 * Rust test can assert on them; exits non-zero on the first failure. */
#include "rmcp.h"

#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "api_check: failed: %s (line %d)\n", #cond, __LINE__); \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int main(void) {
  size_t i, n = rmcp_entry_point_count();
  uint64_t calls = 7, rewritten = 7;
  rmcp_address_state state = RMCP_ADDRESS_LIVE;
  rmcp_allocation alloc;
  char small[8], big[1024];
  size_t needed = 0;
  int local = 0;

  printf("version %s\n", rmcp_version());
  CHECK(n >= 17);
  for (i = 0; i < n; i++) {
    const char *name = rmcp_entry_point_name(i);
    CHECK(name != NULL);
    CHECK(rmcp_stats_get(name, &calls, &rewritten) == RMCP_OK);
    CHECK(calls == 0 && rewritten == 0);
  }
  CHECK(rmcp_entry_point_name(n) == NULL);
  CHECK(strcmp(rmcp_entry_point_name(0), "hipMalloc") == 0);

  /* Bad input: error codes, out-parameters untouched. */
  calls = 7;
  CHECK(rmcp_stats_get(NULL, &calls, &rewritten) == RMCP_ERR_NULL_ARGUMENT);
  CHECK(rmcp_stats_get("hipMalloc", NULL, &rewritten) == RMCP_ERR_NULL_ARGUMENT);
  CHECK(rmcp_stats_get("malloc", &calls, &rewritten) == RMCP_ERR_UNKNOWN_ENTRY_POINT);
  CHECK(calls == 7);
  CHECK(rmcp_lookup(&local, NULL, &alloc) == RMCP_ERR_NULL_ARGUMENT);
  CHECK(rmcp_lookup(&local, &state, NULL) == RMCP_ERR_NULL_ARGUMENT);
  CHECK(state == RMCP_ADDRESS_LIVE);

  /* No allocation is known in this process. */
  CHECK(rmcp_lookup(&local, &state, &alloc) == RMCP_OK);
  CHECK(state == RMCP_ADDRESS_UNKNOWN);

  memset(small, 'x', sizeof small);
  CHECK(rmcp_describe_address(&local, small, sizeof small, &needed) == RMCP_ERR_BUFFER_TOO_SMALL);
  CHECK(needed > sizeof small && needed < sizeof big);
  CHECK(small[0] == 'x');
  CHECK(rmcp_describe_address(&local, NULL, 0, &needed) == RMCP_ERR_NULL_ARGUMENT);
  CHECK(rmcp_describe_address(&local, big, sizeof big, NULL) == RMCP_OK);
  CHECK(strlen(big) + 1 == needed);
  printf("describe %s\n", big);
  printf("api_check ok\n");
  return 0;
}
