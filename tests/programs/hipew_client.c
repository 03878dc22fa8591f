/*
 * hipew_client.c - a HIP client in the style of Blender's hipew and Triton's HIP driver: it
 * does NOT link the runtime. It opens the runtime with dlopen(RTLD_NOW | RTLD_LOCAL) and
 * fills a table of function pointers with dlsym(handle, name), so a preloaded librmcp.so is
 * not in its lookups; only the audit mode (LD_AUDIT=librmcp-audit.so) brings the hooks in.
 *
 *   hipew_client HIP_LIBRARY HSA_LIBRARY OP...
 *
 * OPs (each prints "<op> rc=<code>" with one write):
 *   hostmalloc:FLAGS     table.hipHostMalloc(&p, 4096, FLAGS)
 *   extmalloc:FLAGS      table.hipExtMallocWithFlags(&p, 64, FLAGS)
 *   poolfine             hsa_init, then table.hsa_amd_memory_pool_allocate(4096) from GPU 0's
 *                        fine-grained pool (the search also goes through the table)
 *   poolraw              table.hsa_amd_memory_pool_allocate({0}, 4096, 0, &p) without
 *                        hsa_init (a real runtime without a GPU refuses it; the call still
 *                        shows in rmcp's statistics when it went through the hook)
 *   procaddr:FLAGS       table.hipGetProcAddress("hipHostMalloc"), then that (4096, FLAGS)
 *   default:FLAGS        dlsym(RTLD_DEFAULT, "hipHostMalloc") (4096, FLAGS)
 *   rocmlike:FLAGS       librocblas.so.4's rocmlike_dlsym_host_malloc(HIP_LIBRARY, FLAGS): the
 *                        same dlopen+dlsym, made from inside a ROCm library
 * Exit status: 0, or 3 when a library or symbol is missing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*host_malloc_fn)(void **, size_t, unsigned);
typedef int (*proc_address_fn)(const char *, void **, int, uint64_t, int *);
typedef struct { uint64_t handle; } handle_t;
typedef int (*hsa_init_fn)(void);
typedef int (*iterate_agents_fn)(int (*)(handle_t, void *), void *);
typedef int (*agent_info_fn)(handle_t, int, void *);
typedef int (*iterate_pools_fn)(handle_t, int (*)(handle_t, void *), void *);
typedef int (*pool_info_fn)(handle_t, int, void *);
typedef int (*pool_allocate_fn)(handle_t, size_t, uint32_t, void **);

static struct {
    host_malloc_fn hipHostMalloc;
    host_malloc_fn hipExtMallocWithFlags;
    proc_address_fn hipGetProcAddress; /* NULL on runtimes without it */
    hsa_init_fn hsa_init;
    iterate_agents_fn hsa_iterate_agents;
    agent_info_fn hsa_agent_get_info;
    iterate_pools_fn hsa_amd_agent_iterate_memory_pools;
    pool_info_fn hsa_amd_memory_pool_get_info;
    pool_allocate_fn hsa_amd_memory_pool_allocate;
} table;

static void *must(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "hipew_client: dlsym(%s): %s\n", name, dlerror());
        exit(3);
    }
    return p;
}

#define LOAD(lib, field) \
    do { void *p_ = must(lib, #field); memcpy(&table.field, &p_, sizeof p_); } while (0)

static void say(const char *op, long rc)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s rc=%ld\n", op, rc);
    if (write(1, line, (size_t)n) != n)
        exit(4);
}

static handle_t gpu, fine;
static int have_gpu, have_fine;

static int agent_cb(handle_t agent, void *data)
{
    (void)data;
    uint32_t type = 0;
    if (table.hsa_agent_get_info(agent, 17 /* DEVICE */, &type) == 0 && type == 1 /* GPU */) {
        gpu = agent;
        have_gpu = 1;
        return 1; /* INFO_BREAK */
    }
    return 0;
}

static int pool_cb(handle_t pool, void *data)
{
    (void)data;
    uint32_t segment = 99, flags = 0;
    if (table.hsa_amd_memory_pool_get_info(pool, 0 /* SEGMENT */, &segment) != 0 || segment != 0)
        return 0;
    if (table.hsa_amd_memory_pool_get_info(pool, 1 /* GLOBAL_FLAGS */, &flags) != 0)
        return 0;
    if ((flags & 2u) && !(flags & 1u)) { /* fine-grained, not kernarg */
        fine = pool;
        have_fine = 1;
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hipew_client HIP_LIBRARY HSA_LIBRARY OP...\n");
        return 2;
    }
    void *hip = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    void *hsa = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!hip || !hsa) {
        fprintf(stderr, "hipew_client: dlopen: %s\n", dlerror());
        return 3;
    }
    LOAD(hip, hipHostMalloc);
    LOAD(hip, hipExtMallocWithFlags);
    void *gpa = dlsym(hip, "hipGetProcAddress");
    memcpy(&table.hipGetProcAddress, &gpa, sizeof gpa);
    LOAD(hsa, hsa_init);
    LOAD(hsa, hsa_iterate_agents);
    LOAD(hsa, hsa_agent_get_info);
    LOAD(hsa, hsa_amd_agent_iterate_memory_pools);
    LOAD(hsa, hsa_amd_memory_pool_get_info);
    LOAD(hsa, hsa_amd_memory_pool_allocate);

    for (int i = 3; i < argc; i++) {
        const char *op = argv[i];
        const char *colon = strchr(op, ':');
        unsigned flags = colon ? (unsigned)strtoul(colon + 1, NULL, 0) : 0;
        void *p = NULL;
        long rc;
        if (!strncmp(op, "hostmalloc:", 11)) {
            rc = table.hipHostMalloc(&p, 4096, flags);
        } else if (!strncmp(op, "extmalloc:", 10)) {
            rc = table.hipExtMallocWithFlags(&p, 64, flags);
        } else if (!strcmp(op, "poolfine")) {
            rc = table.hsa_init();
            if (rc == 0) {
                have_gpu = have_fine = 0;
                table.hsa_iterate_agents(agent_cb, NULL);
                if (have_gpu)
                    table.hsa_amd_agent_iterate_memory_pools(gpu, pool_cb, NULL);
                rc = have_fine ? table.hsa_amd_memory_pool_allocate(fine, 4096, 0, &p) : -1;
            }
        } else if (!strcmp(op, "poolraw")) {
            handle_t none = {0};
            rc = table.hsa_amd_memory_pool_allocate(none, 4096, 0, &p);
        } else if (!strncmp(op, "procaddr:", 9)) {
            void *fn = NULL;
            int status = 0;
            rc = table.hipGetProcAddress
                     ? table.hipGetProcAddress("hipHostMalloc", &fn, 600, 0, &status)
                     : -1;
            if (rc == 0 && fn) {
                host_malloc_fn f;
                memcpy(&f, &fn, sizeof f);
                rc = f(&p, 4096, flags);
            }
        } else if (!strncmp(op, "default:", 8)) {
            host_malloc_fn f;
            void *sym = dlsym(RTLD_DEFAULT, "hipHostMalloc");
            memcpy(&f, &sym, sizeof f);
            rc = sym ? f(&p, 4096, flags) : -1;
        } else if (!strncmp(op, "rocmlike:", 9)) {
            void *lib = dlopen("librocblas.so.4", RTLD_NOW | RTLD_LOCAL);
            typedef int (*fn_t)(const char *, unsigned, void **);
            fn_t f = NULL;
            void *sym = lib ? dlsym(lib, "rocmlike_dlsym_host_malloc") : NULL;
            memcpy(&f, &sym, sizeof f);
            rc = f ? f(argv[1], flags, &p) : -1;
        } else {
            fprintf(stderr, "hipew_client: unknown op %s\n", op);
            return 2;
        }
        say(op, rc);
    }
    return 0;
}
