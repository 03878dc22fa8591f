//! The one multiplicative hash rmcp's direct-mapped tables use (the launch
//! hooks' thread table and kernel-name cache, the registry's shards, the
//! caller cache): multiply by 2^64 / phi and keep the top bits. The launch
//! hooks' assembly takes the multiplier as a `const` operand from here.

/// 2^64 / phi, odd: consecutive keys land far apart.
pub const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// The top `bits` bits of `key * FIBONACCI`: an index below `1 << bits`.
#[inline(always)]
pub const fn top_bits(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(FIBONACCI) >> (64 - bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_stay_below_the_table_size_and_spread() {
        let mut seen = [false; 64];
        for k in 0..64u64 {
            let i = top_bits(k * 4096, 6);
            assert!(i < 64);
            seen[i] = true;
        }
        // Page-aligned keys, the worst case for a low-bit mask, fill most slots.
        assert!(seen.iter().filter(|s| **s).count() > 32);
    }
}
