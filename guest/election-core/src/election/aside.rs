//! Standing aside: a node whose host asks it to (its behaviour plugin
//! refused to lead) gives up leadership and does not stand again for a
//! while — not on its election timer, not when asked to campaign, not as
//! a transfer's target, not to replace a leader the host saw die. It still
//! votes and follows, so the others elect someone else meanwhile.
//!
//! The hold lives here, in the protocol, so neither host (the node on tokio,
//! the simulator in virtual time) has to hold back timers to get it.

use super::*;

impl Election {
    /// Steps down (if leading or standing) and does not stand for
    /// `hold_ms` milliseconds. A later call replaces the hold; 0 ends it.
    /// Not durable: a restart or a protocol swap ends it early.
    pub fn stand_aside(&mut self, hold_ms: u64, env: &mut impl Environment) {
        self.now_ns = env.now_ns();
        let hold_ns = hold_ms.saturating_mul(NS_PER_MS);
        self.aside_until_ns = (hold_ns > 0).then(|| self.now_ns.saturating_add(hold_ns));
        self.log(
            LogLevel::Info,
            format!(
                "{} stands aside for {hold_ms} ms at term {}",
                self.id, self.term
            ),
        );
        if self.role != Role::Follower || self.pre_campaign {
            self.become_follower(self.term, None, env, hold_ns);
        } else if hold_ns > 0 {
            self.arm_election_timer(env, hold_ns);
        }
        self.flush();
    }

    /// How much longer this node stands aside, if it does.
    pub(crate) fn aside_left_ns(&self) -> Option<u64> {
        let until = self.aside_until_ns?;
        (self.now_ns < until).then(|| until - self.now_ns)
    }

    /// The election timer fired while standing aside: look again when the
    /// hold is over (plus a timeout, so the nodes that refused do not all
    /// stand at once).
    pub(crate) fn wait_out_aside(&mut self, env: &mut impl Environment) {
        let left = self.aside_left_ns().unwrap_or(0);
        self.log(
            LogLevel::Debug,
            format!(
                "{} does not stand for {} ms yet: it stands aside",
                self.id,
                left.div_ceil(NS_PER_MS)
            ),
        );
        self.arm_election_timer(env, left);
    }
}
