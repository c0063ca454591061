//! The leader-only periodic job.
//!
//! At most one `tick` wake-up is pending at a time, and only while the
//! node leads: becoming leader arms it, each tick that still finds the node
//! leading runs the job and arms the next, stepping down cancels it. A tick
//! whose id is not the pending one (cancelled, or from an earlier arming)
//! is ignored, so there is never more than one chain of ticks.

/// Appended to every run's log line: empty in the normal build, and e.g.
/// ` (v2)` in a build made with `TENURE_PLUGIN_LABEL="v2"` — how
/// `scripts/build-guests.sh` makes a visibly different version to hot-swap
/// in.
const BUILD_LABEL: Option<&str> = option_env!("TENURE_PLUGIN_LABEL");

use std::time::Duration;

use tenure_sdk::{Level, WakeupId, node};

use crate::config::Config;
use crate::snapshot::State;

/// The tag of the scheduler's wake-ups.
pub const TICK: &str = "tick";

/// A periodic job that runs on the leader only.
#[derive(Debug)]
pub struct Scheduler {
    /// The validated configuration.
    config: Config,
    /// Runs so far, across hot swaps.
    runs: u64,
    /// The term of the last run, if any.
    last_run_term: Option<u64>,
    /// The pending tick, if one is scheduled.
    pending: Option<WakeupId>,
}

impl Scheduler {
    /// A scheduler that has not run yet and has no tick pending.
    pub fn new(config: Config) -> Scheduler {
        Scheduler {
            config,
            runs: 0,
            last_run_term: None,
            pending: None,
        }
    }

    /// Called after `init`. A fresh instance on a node that already leads
    /// (the host replaced a trapped one) takes up leader duties at once,
    /// since no `on-become-leader` may come for the current term.
    pub fn start(&mut self) {
        if node::is_leader() {
            self.arm();
        }
    }

    /// The node won the election for `term`: arm the first tick.
    pub fn become_leader(&mut self, term: u64) {
        self.arm();
        node::log(
            Level::Debug,
            &format!(
                "leader in term {term}: {} runs every {} ms",
                self.config.job, self.config.period_ms
            ),
        );
    }

    /// The node follows (or waits for) another leader: stop running.
    pub fn become_follower(&mut self) {
        if let Some(id) = self.pending.take() {
            node::cancel(id);
        }
    }

    /// A wake-up is due: run the job if it is our tick and we still lead.
    pub fn scheduled(&mut self, id: WakeupId, tag: &str) {
        if tag != TICK || self.pending != Some(id) {
            node::log(
                Level::Debug,
                &format!(
                    "ignoring wake-up {} {tag:?}: not the pending tick",
                    id.as_raw()
                ),
            );
            return;
        }
        self.pending = None;
        if !node::is_leader() {
            node::log(Level::Debug, "tick while not leading: not running");
            return;
        }
        if node::lease().is_none() {
            // Leading, but a majority has not confirmed it lately: this
            // node may have been frozen or cut off while a newer leader was
            // elected, and not have heard yet. Skip this run; the next tick
            // runs if the lease is back (or finds the node deposed).
            node::log(Level::Debug, "tick without a lease: not running");
            self.pending = Some(self.schedule_tick());
            return;
        }
        self.runs = self.runs.saturating_add(1);
        let term = node::term();
        self.last_run_term = Some(term);
        let line = format!(
            "run {} of {} by {} in term {term}{}",
            self.runs,
            self.config.job,
            node::this_node(),
            BUILD_LABEL.map(|l| format!(" ({l})")).unwrap_or_default()
        );
        node::log(Level::Info, &line);
        self.pending = Some(self.schedule_tick());
    }

    /// Answers `runs` with the run count in decimal; refuses the rest.
    pub fn call(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        if request.trim_ascii() == b"runs" {
            Ok(self.runs.to_string().into_bytes())
        } else {
            Err(format!(
                "unknown request \"{}\"; the scheduler answers `runs`",
                request.escape_ascii()
            ))
        }
    }

    /// State for operators.
    pub fn inspect(&self) -> Vec<(String, String)> {
        let last_run_term = self
            .last_run_term
            .map_or_else(|| "none".to_string(), |term| term.to_string());
        vec![
            ("job".to_string(), self.config.job.clone()),
            ("period-ms".to_string(), self.config.period_ms.to_string()),
            ("runs".to_string(), self.runs.to_string()),
            ("last-run-term".to_string(), last_run_term),
            (
                "tick-pending".to_string(),
                self.pending.is_some().to_string(),
            ),
        ]
    }

    /// The state to hand to the next version.
    pub fn snapshot(&self) -> Vec<u8> {
        State {
            runs: self.runs,
            last_run_term: self.last_run_term,
            pending: self.pending.map(WakeupId::as_raw),
        }
        .encode()
    }

    /// Takes over a previous version's state. Its pending tick comes with
    /// the swap and replaces any this instance armed in `start`. Then, if
    /// the node leads and no tick is pending, the tick is re-armed: this is
    /// how a hot-swapped scheduler resumes leader duties. A follower drops
    /// any handed-over tick.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let state = State::decode(snapshot)?;
        self.runs = state.runs;
        self.last_run_term = state.last_run_term;
        if let Some(theirs) = state.pending.map(WakeupId::from_raw)
            && let Some(mine) = self.pending.replace(theirs)
            && mine != theirs
        {
            node::cancel(mine);
        }
        if !node::is_leader() {
            self.become_follower();
        } else if self.pending.is_none() {
            self.arm();
            node::log(
                Level::Info,
                &format!(
                    "restored after {} runs: resuming {}",
                    self.runs, self.config.job
                ),
            );
        }
        Ok(())
    }

    /// Schedules the next tick, replacing a pending one.
    fn arm(&mut self) {
        if let Some(id) = self.pending.take() {
            node::cancel(id);
        }
        self.pending = Some(self.schedule_tick());
    }

    fn schedule_tick(&self) -> WakeupId {
        node::schedule(Duration::from_millis(self.config.period_ms), TICK)
    }
}

#[cfg(test)]
mod tests {
    use tenure_sdk::fake;

    use super::*;

    /// Fires the only pending wake-up into `scheduler`, as the node would.
    fn fire(scheduler: &mut Scheduler) {
        let pending = fake::with(|n| n.scheduled.clone());
        assert_eq!(pending.len(), 1, "{pending:?}");
        let wakeup = fake::with(|n| n.pop_wakeup()).expect("one pending");
        scheduler.scheduled(wakeup.id, &wakeup.tag);
    }

    fn info_lines() -> Vec<String> {
        fake::with(|n| n.lines(Level::Info))
    }

    fn scheduled() -> usize {
        fake::with(|n| n.scheduled.len())
    }

    /// A fresh fake node (follower n1, term 0) and a scheduler.
    fn scheduler() -> Scheduler {
        fake::reset();
        Scheduler::new(Config {
            period_ms: 250,
            job: "backup".to_string(),
        })
    }

    /// Makes the fake node lead `term` with a lease, as a leader a
    /// majority just acknowledged.
    fn lead_with_lease(term: u64) {
        fake::with(|n| {
            n.lead(term);
            n.lease = Some(Duration::from_millis(200));
        });
    }

    #[test]
    fn a_tick_without_a_lease_skips_the_run_and_tries_again() {
        let mut s = scheduler();
        lead_with_lease(2);
        s.become_leader(2);
        // Frozen past its lease: still leader in its own view, but not
        // confirmed by a majority lately.
        fake::with(|n| n.lease = None);
        fire(&mut s);
        assert!(info_lines().is_empty(), "no run without a lease");
        assert_eq!(scheduled(), 1, "the next tick is armed");
        fake::with(|n| n.lease = Some(Duration::from_millis(200)));
        fire(&mut s);
        assert_eq!(info_lines(), ["run 1 of backup by n1 in term 2"]);
    }

    #[test]
    fn runs_while_leading_and_stops_when_following() {
        let mut s = scheduler();
        s.start();
        assert_eq!(scheduled(), 0, "a follower schedules nothing");

        lead_with_lease(3);
        s.become_leader(3);
        let first = fake::with(|n| n.scheduled[0].clone());
        assert_eq!(
            (first.after, first.tag.as_str()),
            (Duration::from_millis(250), "tick")
        );
        fire(&mut s);
        fire(&mut s);
        assert_eq!(
            info_lines(),
            [
                "run 1 of backup by n1 in term 3",
                "run 2 of backup by n1 in term 3"
            ]
        );

        fake::with(|n| n.follow(Some("n2"), 3));
        s.become_follower();
        assert_eq!(scheduled(), 0, "stepping down cancels the tick");
        assert_eq!(s.call(b"runs"), Ok(b"2".to_vec()));
        assert_eq!(s.inspect()[3], ("last-run-term".into(), "3".into()));
        assert_eq!(s.inspect()[4], ("tick-pending".into(), "false".into()));
    }

    #[test]
    fn a_tick_after_losing_leadership_does_not_run() {
        let mut s = scheduler();
        lead_with_lease(1);
        s.become_leader(1);
        fake::with(|n| n.follow(None, 2));
        fire(&mut s);
        assert!(info_lines().is_empty());
        assert_eq!(scheduled(), 0, "no next tick");
    }

    #[test]
    fn stale_and_foreign_wake_ups_are_ignored() {
        let mut s = scheduler();
        lead_with_lease(1);
        s.become_leader(1);
        let cancelled = fake::with(|n| n.scheduled[0].id);
        s.become_leader(1); // re-delivered: still one chain
        assert_eq!(scheduled(), 1);
        s.scheduled(cancelled, TICK); // the first, cancelled tick
        let current = fake::with(|n| n.scheduled[0].id);
        s.scheduled(current, "other");
        assert!(info_lines().is_empty());
        fire(&mut s);
        assert_eq!(info_lines(), ["run 1 of backup by n1 in term 1"]);
    }

    #[test]
    fn a_fresh_instance_on_a_leader_starts_running() {
        let mut s = scheduler();
        lead_with_lease(4);
        s.start();
        fire(&mut s);
        assert_eq!(info_lines(), ["run 1 of backup by n1 in term 4"]);
    }

    #[test]
    fn hot_swap_keeps_numbering_and_one_chain_of_ticks() {
        let mut old = scheduler();
        lead_with_lease(2);
        old.become_leader(2);
        fire(&mut old);
        let snapshot = old.snapshot();

        // The new version is initialised on a leader (arming its own tick),
        // then restored with the old version's pending tick handed over.
        let mut new = Scheduler::new(old.config.clone());
        new.start();
        assert_eq!(scheduled(), 2);
        new.restore(&snapshot).expect("restores");
        assert_eq!(scheduled(), 1, "own tick cancelled");
        fire(&mut new);
        assert_eq!(
            info_lines().last().map(String::as_str),
            Some("run 2 of backup by n1 in term 2")
        );
    }

    #[test]
    fn restore_on_a_leader_without_a_pending_tick_rearms() {
        let mut old = scheduler();
        old.runs = 7;
        let snapshot = old.snapshot(); // taken while following

        lead_with_lease(5);
        let mut new = Scheduler::new(old.config.clone());
        new.restore(&snapshot).expect("restores");
        assert_eq!(scheduled(), 1);
        fire(&mut new);
        assert_eq!(
            info_lines().last().map(String::as_str),
            Some("run 8 of backup by n1 in term 5")
        );
    }

    #[test]
    fn restore_on_a_follower_drops_the_handed_over_tick() {
        let mut old = scheduler();
        lead_with_lease(2);
        old.become_leader(2);
        let snapshot = old.snapshot();
        fake::with(|n| n.follow(Some("n2"), 3));
        let mut new = Scheduler::new(old.config.clone());
        new.restore(&snapshot).expect("restores");
        assert_eq!(scheduled(), 0);
        assert_eq!(new.inspect()[4], ("tick-pending".into(), "false".into()));
    }

    #[test]
    fn restore_of_garbage_changes_nothing() {
        let mut s = scheduler();
        s.runs = 3;
        assert!(s.restore(b"nonsense").is_err());
        assert_eq!(s.call(b"runs"), Ok(b"3".to_vec()));
    }

    #[test]
    fn calls() {
        let s = scheduler();
        assert_eq!(s.call(b"runs\n"), Ok(b"0".to_vec()));
        let error = s.call(b"stop").expect_err("unknown");
        assert!(error.contains("\"stop\""), "{error}");
    }
}
