#!/usr/bin/env python3
"""Writes the model GPU topologies (KFD sysfs format) in this directory.

Run from anywhere: python3 tests/model/topologies/generate.py
The output is committed; SOURCES.md says which values are real and which are
synthesised. libhsakmt's model mode rules: node N's gpu_id is N+1 (so the first GPU, node 1, has 2) (CPU node 0
has gpu_id 0), drm_render_minor non-zero, at least one cache entry per GPU,
mem bank size_in_bytes, and no DebugSupportedFirmware capability (bit 29 of
`capability`; the model aborts on the debugger's RUNTIME_ENABLE ioctl, its message says
"bit 30")."""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1 << 30

# name: (gfx_target_version, device_id, kfd asic name, CUs, shader engines,
#        arrays per engine, CUs per array, max waves per SIMD, VRAM GiB,
#        family_id, L2 KiB, L3 KiB, SDMA engines)
CARDS = {
    "rx6800xt": (100300, 0x73BF, "navi21", 72, 4, 2, 9, 16, 16, 143, 4096, 131072, 2),
    "rx5700xt": (100100, 0x731F, "navi10", 40, 2, 2, 10, 20, 8, 143, 4096, 0, 2),
    "rx7900xt": (110000, 0x744C, "", 84, 6, 2, 7, 16, 20, 145, 6144, 81920, 2),
}

SYSTEMS = {
    "rx6800xt": [("rx6800xt", 0x0B00)],
    "rx5700xt": [("rx5700xt", 0x2800)],
    "rx7900xt": [("rx7900xt", 0x0300)],
    "rx7900xt-rx6800xt": [("rx7900xt", 0x0300), ("rx6800xt", 0x0B00)],
    "rx6800xt-x2": [("rx6800xt", 0x0B00), ("rx6800xt", 0x0C00)],
}

CPU_PROPS = """cpu_cores_count 16
simd_count 0
mem_banks_count 1
caches_count 0
io_links_count {links}
p2p_links_count 0
cpu_core_id_base 0
simd_id_base 0
max_waves_per_simd 0
lds_size_in_kb 0
gds_size_in_kb 0
num_gws 0
wave_front_size 0
array_count 0
simd_arrays_per_engine 0
cu_per_simd_array 0
simd_per_cu 0
max_slots_scratch_cu 0
gfx_target_version 0
vendor_id 0
device_id 0
location_id 0
domain 0
drm_render_minor 0
hive_id 0
num_sdma_engines 0
num_sdma_xgmi_engines 0
num_sdma_queues_per_engine 0
num_cp_queues 0
max_engine_clk_ccompute 4300
"""

GPU_PROPS = """cpu_cores_count 0
simd_count {simds}
mem_banks_count 1
caches_count {caches}
io_links_count 1
p2p_links_count 0
cpu_core_id_base 0
simd_id_base {simd_base}
max_waves_per_simd {waves}
lds_size_in_kb 64
gds_size_in_kb 0
num_gws 64
wave_front_size 32
array_count {arrays}
simd_arrays_per_engine {arrays_per_se}
cu_per_simd_array {cu_per_array}
simd_per_cu 2
max_slots_scratch_cu 32
gfx_target_version {gfx}
vendor_id 4098
device_id {device}
location_id {location}
domain 0
drm_render_minor {minor}
hive_id 0
num_sdma_engines {sdma}
num_sdma_xgmi_engines 0
num_sdma_queues_per_engine 8
num_cp_queues 8
max_engine_clk_fcompute 2400
local_mem_size 0
fw_version 160
capability 134718176
debug_prop 1479
sdma_fw_version 60
unique_id 0
num_xcc 1
max_engine_clk_ccompute 4300
family_id {family}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def link(from_node, to_node):
    return (f"type 2\nversion_major 0\nversion_minor 0\nnode_from {from_node}\n"
            f"node_to {to_node}\nweight 20\nmin_latency 0\nmax_latency 0\n"
            f"min_bandwidth 312\nmax_bandwidth 64000\nrecommended_transfer_size 0\n"
            f"recommended_sdma_engine_id_mask 0\nflags 1\n")


# type: data cache (1) of the compute units (HSACU, 8); ROCr keeps only those.
def cache(simd_base, level, size_kib, ctype, siblings):
    return (f"processor_id_low {simd_base}\nlevel {level}\nsize {size_kib}\n"
            f"cache_line_size 128\ncache_lines_per_tag 1\nassociation 16\nlatency 1\n"
            f"type {ctype}\nsibling_map {','.join(['1'] * siblings)}\n")


def main():
    for system, gpus in SYSTEMS.items():
        root = os.path.join(HERE, system)
        shutil.rmtree(root, ignore_errors=True)
        write(os.path.join(root, "generation_id"), "1\n")
        write(os.path.join(root, "system_properties"),
              "platform_oem 0\nplatform_id 0\nplatform_rev 0\n")
        cpu = os.path.join(root, "nodes", "0")
        write(os.path.join(cpu, "gpu_id"), "0\n")
        write(os.path.join(cpu, "name"), "\n")
        write(os.path.join(cpu, "properties"), CPU_PROPS.format(links=len(gpus)))
        write(os.path.join(cpu, "mem_banks", "0", "properties"),
              f"heap_type 0\nsize_in_bytes {64 * GIB}\nflags 0\nwidth 64\nmem_clk_max 3200\n")
        for i in range(len(gpus)):
            write(os.path.join(cpu, "io_links", str(i), "properties"), link(0, i + 1))
        for i, (card, location) in enumerate(gpus):
            node = i + 1
            (gfx, device, asic, cus, ses, arrays_per_se, cu_per_array, waves, vram,
             family, l2, l3, sdma) = CARDS[card]
            simd_base = 0x80001000 + 0x1000 * i
            d = os.path.join(root, "nodes", str(node))
            caches = [cache(simd_base, 1, 16, 9, 1), cache(simd_base, 2, l2, 9, cus)]
            if l3:
                caches.append(cache(simd_base, 3, l3, 9, cus))
            write(os.path.join(d, "gpu_id"), f"{node + 1}\n")
            write(os.path.join(d, "name"), f"{asic}\n")
            write(os.path.join(d, "properties"), GPU_PROPS.format(
                simds=cus * 2, caches=len(caches), simd_base=simd_base, waves=waves,
                arrays=ses * arrays_per_se, arrays_per_se=arrays_per_se,
                cu_per_array=cu_per_array, gfx=gfx, device=device, location=location,
                minor=128 + i, sdma=sdma, family=family))
            write(os.path.join(d, "mem_banks", "0", "properties"),
                  f"heap_type 1\nsize_in_bytes {vram * GIB}\nflags 0\nwidth 256\n"
                  f"mem_clk_max 1000\n")
            for k, c in enumerate(caches):
                write(os.path.join(d, "caches", str(k), "properties"), c)
            write(os.path.join(d, "io_links", "0", "properties"), link(node, 0))


if __name__ == "__main__":
    main()
