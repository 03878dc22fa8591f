//! The HSA allocation that backs a HIP one. On ROCm 7 the HIP runtime's
//! hipMalloc, hipHostMalloc and friends get their memory from the exported
//! `hsa_amd_memory_pool_allocate`, so rmcp's HSA hook sees the same memory
//! that the HIP hook around it is about to record. Such a nested allocation
//! made by a ROCm library is held back (`Held`) until the HIP call returns:
//! if the HIP result lies inside it, the HIP record is the only one made
//! (it is the one a report names: before, the HIP record replaced the HSA
//! one at the same base); otherwise the held allocation is recorded as
//! before, so runtime-internal allocations made during a HIP call are kept.

/// A held HSA pool allocation: where it is and the pool it came from (the
/// rest of its record, the pool's flags and node, is looked up only if it
/// is recorded; a ROCm library's pool allocation is never rewritten).
/// `size == 0`: nothing held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub base: usize,
    pub size: usize,
    pub pool: u64,
}

impl Held {
    pub const NONE: Held = Held {
        base: 0,
        size: 0,
        pool: 0,
    };

    pub fn is_some(&self) -> bool {
        self.size != 0
    }

    /// Whether the HIP allocation `[base, base + size)` lies inside this
    /// one, so that recording it says all the held record would. An empty
    /// HIP range is never recorded, so it backs nothing.
    pub fn backs(&self, base: usize, size: usize) -> bool {
        self.is_some()
            && size != 0
            && base >= self.base
            && base - self.base <= self.size
            && size <= self.size - (base - self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(base: usize, size: usize) -> Held {
        Held {
            base,
            size,
            ..Held::NONE
        }
    }

    #[test]
    fn a_hip_allocation_inside_the_held_one_is_backed_by_it() {
        let h = held(0x1000, 0x1000);
        assert!(h.backs(0x1000, 0x1000), "the same range");
        assert!(h.backs(0x1000, 0x10), "a prefix");
        assert!(h.backs(0x1f00, 0x100), "a suffix");
        assert!(!h.backs(0x1f00, 0x101), "one byte past its end");
        assert!(!h.backs(0xf00, 0x100), "before it");
        assert!(!h.backs(0x2000, 0x10), "right after it");
        assert!(!h.backs(usize::MAX, usize::MAX), "no overflow");
        assert!(!h.backs(0, 0), "a failed HIP call");
        assert!(
            !h.backs(0x1000, 0),
            "an empty HIP allocation, which is not recorded"
        );
    }

    #[test]
    fn nothing_held_backs_nothing() {
        assert!(!Held::NONE.is_some());
        assert!(!Held::NONE.backs(0, 0));
        assert!(!Held::NONE.backs(0x1000, 0x1000));
    }
}
