/* The interface between ROCr's bundled libhsakmt (model mode) and a GPU model
 * library, as documented in ROCm's libhsakmt (include/hsakmt/hsakmtmodeliface.h;
 * written here from that description): version 0.4, as in ROCm 7.2.4, plus the
 * 0.5 entry that tests/model/hsakmt-model-memory-fault.patch proposes
 * (set_memory_fault). libhsakmt accepts a model whose minor version is at
 * least its own and reads only the entries it knows: stock 7.2.4 loads this
 * 0.5 model and never calls set_memory_fault.
 *
 * libhsakmt dlopen()s $HSA_MODEL_LIB and calls its export
 * `get_hsakmt_model_functions`, which returns a table of the functions below.
 * One model object is created per GPU node of $HSA_MODEL_TOPOLOGY. Addresses
 * handed to the model are GPU virtual addresses; the GPU's view of address X
 * is the CPU address aperture_base + X (see set_global_aperture). */
#ifndef RMCP_MODEL_IFACE_H
#define RMCP_MODEL_IFACE_H

#include <stdint.h>

#define MODEL_IFACE_MAJOR 0u
#define MODEL_IFACE_MINOR 5u

struct model_gpu;   /* opaque to libhsakmt */
struct model_queue; /* opaque to libhsakmt */

/* What AMDKFD_IOC_CREATE_QUEUE passes on (GPU virtual addresses). */
struct model_queue_desc {
    uint64_t ring_base;     /* first byte of the ring */
    uint64_t write_ptr;     /* uint64_t write index (AQL: packets) */
    uint64_t read_ptr;      /* uint64_t read index, advanced by the model */
    uint64_t *doorbell;     /* not filled by libhsakmt 7.2.4: poll write_ptr */
    uint32_t ring_bytes;
    uint32_t queue_type;    /* KFD_IOC_QUEUE_TYPE_* */
};

/* Sets KFD event `event_id` (the amd_signal_t event_id of a signal). */
typedef void (*model_set_event_fn)(void *data, unsigned event_id);

/* Interface 0.5: raises a GPU memory fault at GPU virtual address `address`
 * on the node that `data` stands for; `reasons` is a mask of MODEL_FAULT_*. */
typedef void (*model_memory_fault_fn)(void *data, uint64_t address, uint32_t reasons);
#define MODEL_FAULT_NOT_PRESENT (1u << 0)
#define MODEL_FAULT_READ_ONLY   (1u << 1)
#define MODEL_FAULT_NO_EXECUTE  (1u << 2)
#define MODEL_FAULT_IMPRECISE   (1u << 3)

struct model_functions_v0_5 {
    uint32_t version_major;
    uint32_t version_minor;
    struct model_gpu *(*create)(void);
    void (*destroy)(struct model_gpu *gpu);
    void (*set_global_aperture)(struct model_gpu *gpu, void *base, uint64_t size);
    void (*alloced_memory)(struct model_gpu *gpu, void *va, uint64_t size, uint32_t kfd_flags);
    void (*freed_memory)(struct model_gpu *gpu, void *va, uint64_t size);
    void (*set_notify_event)(struct model_gpu *gpu, void (*cb)(void *data), void *data);
    void (*set_wait_event)(struct model_gpu *gpu,
                           void (*cb)(void *data, uint64_t address, uint64_t age), void *data);
    struct model_queue *(*register_queue)(struct model_gpu *gpu, struct model_queue_desc *desc);
    void (*set_set_event)(struct model_gpu *gpu, model_set_event_fn fn, void *data);
    void (*destroy_queue)(struct model_gpu *gpu, struct model_queue *queue);
    /* 0.5 */
    void (*set_memory_fault)(struct model_gpu *gpu, model_memory_fault_fn fn, void *data);
};

/* KFD allocation flags (Linux include/uapi/linux/kfd_ioctl.h, checked against
 * the copy in ROCm's libhsakmt/include/hsakmt/linux/kfd_ioctl.h). */
#define KFD_FLAG_VRAM          (1u << 0)
#define KFD_FLAG_GTT           (1u << 1)
#define KFD_FLAG_USERPTR       (1u << 2)
#define KFD_FLAG_DOORBELL      (1u << 3)
#define KFD_FLAG_MMIO_REMAP    (1u << 4)
#define KFD_FLAG_CONTIGUOUS    (1u << 23) /* CONTIGUOUS_BEST_EFFORT */
#define KFD_FLAG_EXT_COHERENT  (1u << 24)
#define KFD_FLAG_UNCACHED      (1u << 25)
#define KFD_FLAG_COHERENT      (1u << 26)
#define KFD_FLAG_AQL_QUEUE_MEM (1u << 27)
#define KFD_FLAG_NO_SUBSTITUTE (1u << 28)
#define KFD_FLAG_PUBLIC        (1u << 29)
#define KFD_FLAG_EXECUTABLE    (1u << 30)
#define KFD_FLAG_WRITABLE      (1u << 31)

/* KFD queue types (kfd_ioctl.h). */
#define KFD_QUEUE_COMPUTE      0u
#define KFD_QUEUE_SDMA         1u
#define KFD_QUEUE_COMPUTE_AQL  2u

/* AQL (HSA spec): every packet is 64 bytes; header bits 0-7 are the type and
 * the completion signal handle is at byte 56 for every packet type. */
#define AQL_PACKET_BYTES          64u
#define AQL_TYPE_VENDOR_SPECIFIC  0u
#define AQL_TYPE_INVALID          1u
#define AQL_TYPE_KERNEL_DISPATCH  2u
#define AQL_TYPE_BARRIER_AND      3u
#define AQL_TYPE_AGENT_DISPATCH   4u
#define AQL_TYPE_BARRIER_OR       5u
#define AQL_COMPLETION_SIGNAL_OFF 56u
#define AQL_BARRIER_DEP_OFF       8u  /* barrier-AND/OR: 5 dependency signals */
#define AQL_BARRIER_DEPS          5u
/* Kernel-dispatch packet (HSA spec, hsa_kernel_dispatch_packet_t): work-group
 * size at 4, grid size at 12, kernel descriptor address at 32, kernarg
 * segment address at 40. */
#define AQL_DISPATCH_WORKGROUP_OFF     4u  /* uint16_t x, y, z */
#define AQL_DISPATCH_GRID_OFF          12u /* uint32_t x, y, z (work-items) */
#define AQL_DISPATCH_KERNEL_OBJECT_OFF 32u
#define AQL_DISPATCH_KERNARG_OFF       40u
/* Kernel descriptor (AMDGPU code object v3+, llvm AMDGPUUsage "Kernel
 * Descriptor"): 64 bytes; kernarg_size (uint32) at byte 8. */
#define KERNEL_DESCRIPTOR_BYTES        64u
#define KERNEL_DESCRIPTOR_KERNARG_SIZE 8u

/* amd_signal_t (hsa/amd_hsa_signal.h of ROCm 7.2.4): 64-bit kind at 0, value
 * at 8, event mailbox pointer at 16, event id at 24. */
#define AMD_SIGNAL_VALUE_OFF    8u
#define AMD_SIGNAL_MAILBOX_OFF  16u
#define AMD_SIGNAL_EVENT_ID_OFF 24u

#endif
