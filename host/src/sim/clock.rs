//! Each simulated node's own clock: virtual time, running a little fast or
//! slow, at a rate that may change mid-run.
//!
//! A real node's monotonic clock never jumps, but its rate is only as good
//! as its oscillator and the hypervisor under it. Tenure's leases assume
//! that two nodes' clocks run apart by at most `lease-drift-margin-ms` over
//! a minimum election timeout; the simulator gives every node a clock that
//! drifts by a number of parts per million and lets that number change at
//! any moment ([`NodeClock::set_drift`]), continuously, so the reading
//! never goes back.

/// One node's clock: `anchor_local_ns` at virtual time `anchor_virtual_ns`,
/// advancing `1 + drift_ppm / 10^6` times as fast as virtual time since.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeClock {
    anchor_virtual_ns: u64,
    anchor_local_ns: u64,
    drift_ppm: i32,
}

impl NodeClock {
    /// A clock that read zero at virtual time zero and drifts `drift_ppm`.
    pub(crate) fn drifting(drift_ppm: i32) -> NodeClock {
        NodeClock {
            drift_ppm,
            ..NodeClock::default()
        }
    }

    /// What the clock reads at virtual time `at_ns` (not before its anchor).
    pub(crate) fn local(&self, at_ns: u64) -> u64 {
        let since = i128::from(at_ns.saturating_sub(self.anchor_virtual_ns));
        let drifted = since * (1_000_000 + i128::from(self.drift_ppm)) / 1_000_000;
        let local = i128::from(self.anchor_local_ns) + drifted.max(0);
        u64::try_from(local).unwrap_or(u64::MAX)
    }

    /// How much virtual time passes while the clock advances `local_ns`,
    /// at its current rate.
    pub(crate) fn span(&self, local_ns: u64) -> u64 {
        let rate = (1_000_000 + i128::from(self.drift_ppm)).max(1);
        u64::try_from(i128::from(local_ns) * 1_000_000 / rate).unwrap_or(u64::MAX)
    }

    /// From virtual time `at_ns` on, the clock drifts `drift_ppm`; its
    /// reading carries on from where it was.
    pub(crate) fn set_drift(&mut self, at_ns: u64, drift_ppm: i32) {
        self.anchor_local_ns = self.local(at_ns);
        self.anchor_virtual_ns = at_ns;
        self.drift_ppm = drift_ppm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_drifts_and_changes_rate_without_jumping() {
        let mut clock = NodeClock::drifting(10_000);
        assert_eq!(clock.local(1_000_000), 1_010_000);
        assert_eq!(clock.span(1_010_000), 1_000_000);
        clock.set_drift(1_000_000, -10_000);
        assert_eq!(clock.local(1_000_000), 1_010_000, "no jump at the change");
        assert_eq!(clock.local(2_000_000), 1_010_000 + 990_000);
        assert_eq!(clock.span(990_000), 1_000_000);
    }
}
