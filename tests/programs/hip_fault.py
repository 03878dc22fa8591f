"""hip_fault.py - a Python program that calls HIP through ctypes, as tools that avoid a
compiled extension do, for tests/model_fault.rs (`rmcp run --on-gpu-fault cpu`).

    python3 hip_fault.py CODE_OBJECT [--catch]

Loads CODE_OBJECT (tests/model/fault_kernels.hip) with hipModuleLoadData, allocates
64 MiB, launches train::axpy<float> with its output pointer 16 bytes past the end
of that buffer (the modelled GPU faults on it), and synchronises. Any HIP error
raises RuntimeError naming the call and the error, so the program exits 1 with a
traceback; with --catch the error of hipDeviceSynchronize is caught instead, one
line says so, and the program exits 0.
"""

import ctypes
import sys

BUFFER_BYTES = 64 << 20
KERNEL = b"_ZN5train4axpyIfEEvPT_PKS1_m"

hip = ctypes.CDLL("libamdhip64.so.7")
hip.hipGetErrorName.restype = ctypes.c_char_p
hip.hipGetErrorName.argtypes = [ctypes.c_int]
hip.hipModuleLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.c_void_p,
]


def check(what, rc):
    if rc != 0:
        name = hip.hipGetErrorName(rc).decode()
        raise RuntimeError(f"{what} failed: {name} ({rc})")


def main():
    catch = "--catch" in sys.argv[2:]
    with open(sys.argv[1], "rb") as f:
        image = ctypes.create_string_buffer(f.read())
    module = ctypes.c_void_p()
    check("hipModuleLoadData", hip.hipModuleLoadData(ctypes.byref(module), image))
    func = ctypes.c_void_p()
    check("hipModuleGetFunction", hip.hipModuleGetFunction(ctypes.byref(func), module, KERNEL))
    a = ctypes.c_void_p()
    check("hipMalloc", hip.hipMalloc(ctypes.byref(a), ctypes.c_size_t(BUFFER_BYTES)))
    y = ctypes.c_void_p(a.value + BUFFER_BYTES + 16)
    x = ctypes.c_void_p(a.value)
    n = ctypes.c_ulong(64)
    args = (ctypes.c_void_p * 3)(
        ctypes.addressof(y), ctypes.addressof(x), ctypes.addressof(n)
    )
    check("hipModuleLaunchKernel", hip.hipModuleLaunchKernel(func, 1, 1, 1, 64, 1, 1, 0, None, args, None))
    try:
        check("hipDeviceSynchronize", hip.hipDeviceSynchronize())
    except RuntimeError as e:
        if not catch:
            raise
        print(f"caught: {e}; carrying on without the GPU result", flush=True)
        return 0
    print("synchronised without an error", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
