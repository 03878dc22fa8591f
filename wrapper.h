/* The real ROCm headers that bindgen reads when rmcp is built with
 * `--features real-headers` (build/real_headers.rs): with -I/usr/include
 * (Debian bookworm's ROCm 5.2.3), -I.rocm/sid-root/usr/include (Debian sid's
 * ROCm 6.4.3) and -I.rocm/exp-root/usr/include (Debian experimental's ROCm
 * 7.2.4), all installed by scripts/setup-rocm.sh.
 * tests/real_rocm.rs checks every exported hook of hook_table! against the
 * prototypes generated from here (the few a version lacks, or declares only
 * in the C++ header hip/hip_ext.h, it names and checks otherwise), and
 * rmcp::abi against the layouts. */
#ifndef __HIP_PLATFORM_AMD__
#define __HIP_PLATFORM_AMD__ 1
#endif
#include <hip/hip_version.h>
#include <hip/hip_runtime_api.h>
#if HIP_VERSION_MAJOR >= 6
#include <hip/hip_deprecated.h> /* hipDeviceProp_tR0000 (hip_runtime_api.h does not include it) */
#endif
#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>
