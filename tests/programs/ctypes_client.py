"""ctypes_client.py - a HIP client in the style of Python bindings (ctypes, hip-python):
it loads the runtimes with ctypes.CDLL (dlopen) and calls functions looked up on the
handle (dlsym), so a preloaded librmcp.so is not in those lookups.

    python3 ctypes_client.py HIP_LIBRARY HSA_LIBRARY

Prints one "<op> rc=<code>" line per call:
    hipHostMalloc(4096, 0), hipExtMallocWithFlags(64, 1 = Finegrained),
    hsa_init, then hsa_amd_memory_pool_allocate(4096) from GPU 0's fine-grained pool
    (-1 when there is no such pool).
"""
import ctypes
import sys

hip = ctypes.CDLL(sys.argv[1])
hsa = ctypes.CDLL(sys.argv[2])

p = ctypes.c_void_p()
print("hipHostMalloc rc=%d" % hip.hipHostMalloc(ctypes.byref(p), ctypes.c_size_t(4096), ctypes.c_uint(0)))
print("hipExtMallocWithFlags rc=%d" % hip.hipExtMallocWithFlags(ctypes.byref(p), ctypes.c_size_t(64), ctypes.c_uint(1)))

rc = hsa.hsa_init()
print("hsa_init rc=%d" % rc)
if rc == 0:
    AGENT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_void_p)
    found = {}

    def on_agent(agent, _data):
        kind = ctypes.c_uint32(99)
        if hsa.hsa_agent_get_info(ctypes.c_uint64(agent), 17, ctypes.byref(kind)) == 0 and kind.value == 1:
            found["gpu"] = agent
            return 1  # HSA_STATUS_INFO_BREAK
        return 0

    def on_pool(pool, _data):
        segment, flags = ctypes.c_uint32(99), ctypes.c_uint32(0)
        hsa.hsa_amd_memory_pool_get_info(ctypes.c_uint64(pool), 0, ctypes.byref(segment))
        hsa.hsa_amd_memory_pool_get_info(ctypes.c_uint64(pool), 1, ctypes.byref(flags))
        if segment.value == 0 and flags.value & 2 and not flags.value & 1:  # fine, not kernarg
            found["fine"] = pool
            return 1
        return 0

    agent_cb, pool_cb = AGENT_CB(on_agent), AGENT_CB(on_pool)
    hsa.hsa_iterate_agents(agent_cb, None)
    if "gpu" in found:
        hsa.hsa_amd_agent_iterate_memory_pools(ctypes.c_uint64(found["gpu"]), pool_cb, None)
    if "fine" in found:
        rc = hsa.hsa_amd_memory_pool_allocate(
            ctypes.c_uint64(found["fine"]), ctypes.c_size_t(4096), ctypes.c_uint32(0), ctypes.byref(p))
    else:
        rc = -1
    print("hsa_amd_memory_pool_allocate rc=%d" % rc)
