"""ddp_fault.py - examples/pytorch/ddp.py with a GPU memory fault in one worker.

    FAKE_FAULT_RANK=1 FAKE_DOUBLES_DIR=DIR torchrun ... ddp_fault.py [ddp.py's options]

Runs ddp.py's training loop unchanged. After its first optimizer step, the rank named by
FAKE_FAULT_RANK loads the HIP and HSA test doubles from DIR with ctypes (as Python HIP
bindings load a runtime), initialises HSA, allocates 4096 bytes with hipHostMalloc and
has the HSA double raise a memory fault 64 bytes into that block. The double then runs
the registered fault handlers and aborts, as ROCr does. Other ranks never touch the
doubles. When HIP_VISIBLE_DEVICES=-1 (the CPU re-run of `rmcp run --on-gpu-fault cpu`)
the doubles stand for a machine whose GPUs are hidden, so nothing faults.
"""
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "pytorch"))
import ddp  # noqa: E402

FAULT_RANK = int(os.environ.get("FAKE_FAULT_RANK", "-1"))
DOUBLES = os.environ.get("FAKE_DOUBLES_DIR", "")


def fault(rank, step, _device):
    if rank != FAULT_RANK or step != 1 or os.environ.get("HIP_VISIBLE_DEVICES") == "-1":
        return
    hsa = ctypes.CDLL(os.path.join(DOUBLES, "libhsa-runtime64.so.1"))
    hip = ctypes.CDLL(os.path.join(DOUBLES, "libamdhip64.so.6"))
    rc = hsa.hsa_init()
    p = ctypes.c_void_p()
    rc_alloc = hip.hipHostMalloc(ctypes.byref(p), ctypes.c_size_t(4096), ctypes.c_uint(0))
    if rc or rc_alloc or not p.value:
        print(f"rank {rank}: the doubles failed: hsa_init rc={rc}, hipHostMalloc rc={rc_alloc}", flush=True)
        sys.exit(3)
    address = p.value + 64
    print(f"rank {rank}: pid {os.getpid()} faults at 0x{address:x}", flush=True)
    hsa.fake_hsa_raise_memory_fault(ctypes.c_uint32(0), ctypes.c_uint64(address), ctypes.c_uint32(1))
    print(f"rank {rank}: the fault returned", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    sys.exit(ddp.main(after_step=fault))
