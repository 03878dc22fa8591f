//! The entry points rmcp interposes, named once for stats, the registry and
//! the C API.

/// Every exported hook. The order is the order of the stats table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Entry {
    HipMalloc,
    HipFree,
    HipHostMalloc,
    HipHostAlloc,
    HipExtHostAlloc,
    HipMallocHost,
    HipMemAllocHost,
    HipHostFree,
    HipFreeHost,
    HipExtMallocWithFlags,
    HipMallocManaged,
    HipHostRegister,
    HipHostUnregister,
    HipMallocAsync,
    HipMallocFromPoolAsync,
    HipFreeAsync,
    HipGetProcAddress,
    HsaMemoryPoolAllocate,
    HsaMemoryPoolFree,
}

impl Entry {
    pub const COUNT: usize = 19;

    pub const ALL: [Entry; Entry::COUNT] = [
        Entry::HipMalloc,
        Entry::HipFree,
        Entry::HipHostMalloc,
        Entry::HipHostAlloc,
        Entry::HipExtHostAlloc,
        Entry::HipMallocHost,
        Entry::HipMemAllocHost,
        Entry::HipHostFree,
        Entry::HipFreeHost,
        Entry::HipExtMallocWithFlags,
        Entry::HipMallocManaged,
        Entry::HipHostRegister,
        Entry::HipHostUnregister,
        Entry::HipMallocAsync,
        Entry::HipMallocFromPoolAsync,
        Entry::HipFreeAsync,
        Entry::HipGetProcAddress,
        Entry::HsaMemoryPoolAllocate,
        Entry::HsaMemoryPoolFree,
    ];

    /// The C symbol name.
    pub const fn name(self) -> &'static str {
        match self {
            Entry::HipMalloc => "hipMalloc",
            Entry::HipFree => "hipFree",
            Entry::HipHostMalloc => "hipHostMalloc",
            Entry::HipHostAlloc => "hipHostAlloc",
            Entry::HipExtHostAlloc => "hipExtHostAlloc",
            Entry::HipMallocHost => "hipMallocHost",
            Entry::HipMemAllocHost => "hipMemAllocHost",
            Entry::HipHostFree => "hipHostFree",
            Entry::HipFreeHost => "hipFreeHost",
            Entry::HipExtMallocWithFlags => "hipExtMallocWithFlags",
            Entry::HipMallocManaged => "hipMallocManaged",
            Entry::HipHostRegister => "hipHostRegister",
            Entry::HipHostUnregister => "hipHostUnregister",
            Entry::HipMallocAsync => "hipMallocAsync",
            Entry::HipMallocFromPoolAsync => "hipMallocFromPoolAsync",
            Entry::HipFreeAsync => "hipFreeAsync",
            Entry::HipGetProcAddress => "hipGetProcAddress",
            Entry::HsaMemoryPoolAllocate => "hsa_amd_memory_pool_allocate",
            Entry::HsaMemoryPoolFree => "hsa_amd_memory_pool_free",
        }
    }

    /// The same name as a NUL-terminated C string, for the C API.
    pub const fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            Entry::HipMalloc => c"hipMalloc",
            Entry::HipFree => c"hipFree",
            Entry::HipHostMalloc => c"hipHostMalloc",
            Entry::HipHostAlloc => c"hipHostAlloc",
            Entry::HipExtHostAlloc => c"hipExtHostAlloc",
            Entry::HipMallocHost => c"hipMallocHost",
            Entry::HipMemAllocHost => c"hipMemAllocHost",
            Entry::HipHostFree => c"hipHostFree",
            Entry::HipFreeHost => c"hipFreeHost",
            Entry::HipExtMallocWithFlags => c"hipExtMallocWithFlags",
            Entry::HipMallocManaged => c"hipMallocManaged",
            Entry::HipHostRegister => c"hipHostRegister",
            Entry::HipHostUnregister => c"hipHostUnregister",
            Entry::HipMallocAsync => c"hipMallocAsync",
            Entry::HipMallocFromPoolAsync => c"hipMallocFromPoolAsync",
            Entry::HipFreeAsync => c"hipFreeAsync",
            Entry::HipGetProcAddress => c"hipGetProcAddress",
            Entry::HsaMemoryPoolAllocate => c"hsa_amd_memory_pool_allocate",
            Entry::HsaMemoryPoolFree => c"hsa_amd_memory_pool_free",
        }
    }

    pub fn from_name(name: &str) -> Option<Entry> {
        Entry::ALL.iter().copied().find(|e| e.name() == name)
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Entry> {
        Entry::ALL.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, e) in Entry::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Entry::from_index(i), Some(*e));
            assert_eq!(Entry::from_name(e.name()), Some(*e));
            assert_eq!(e.c_name().to_str().unwrap(), e.name());
        }
        assert_eq!(Entry::from_name("malloc"), None);
        assert_eq!(Entry::from_index(Entry::COUNT), None);
    }
}
