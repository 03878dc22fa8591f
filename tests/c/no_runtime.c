/* Linked against librmcp only: no HIP runtime is loaded until rmcp loads
 * the one RMCP_HIP_LIBRARY names. */
#include <stddef.h>
#include <stdio.h>

int hipHostMalloc(void **ptr, size_t size, unsigned int flags);
int hipHostFree(void *ptr);

int main(void) {
  void *p = NULL;
  int rc = hipHostMalloc(&p, 64, 0);
  printf("hipHostMalloc rc=%d\n", rc);
  if (rc == 0) hipHostFree(p);
  return rc == 0 ? 0 : 1;
}
