//! The simulator's random numbers: SplitMix64, a tiny generator whose
//! output is fixed by its algorithm, so a seed replays the same run on any
//! machine and with any version of any dependency.

/// A seeded SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator for `seed`. Equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        SimRng { state: seed }
    }

    /// An independent generator for a sub-stream (a node, a purpose): the
    /// same `(seed, stream)` always gives the same sequence.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut mix = SimRng::new(seed ^ stream.wrapping_mul(0xd134_2543_de82_ef95));
        SimRng::new(mix.next_u64())
    }

    /// 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `[low, high]` (inclusive). Returns `low` if
    /// `high <= low`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        low + self.next_u64() % (span + 1)
    }

    /// A uniform index in `[0, len)`; `len` must be positive.
    pub fn index(&mut self, len: usize) -> usize {
        self.range(0, len.saturating_sub(1) as u64) as usize
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_known_first_value() {
        let a: Vec<u64> = (0..5)
            .scan(SimRng::new(1), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(SimRng::new(1), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        // SplitMix64's published first output for seed 1 (guards the
        // algorithm against accidental change, which would break replays).
        assert_eq!(SimRng::new(1).next_u64(), 0x910a_2dec_8902_5cc1);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = SimRng::new(9);
        for _ in 0..10_000 {
            let v = r.range(10, 20);
            assert!((10..=20).contains(&v));
            assert!(r.unit() < 1.0);
            assert!(r.index(3) < 3);
        }
        assert_eq!(r.range(5, 5), 5);
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }

    #[test]
    fn derived_streams_differ() {
        let mut a = SimRng::derive(7, 1);
        let mut b = SimRng::derive(7, 2);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
