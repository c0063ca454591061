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

use crate::config::Config;
use crate::host::{Host, Level};
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
    /// The id of the pending tick, if one is scheduled.
    pending: Option<u64>,
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
    pub fn start(&mut self, host: &mut impl Host) {
        if host.is_leader() {
            self.arm(host);
        }
    }

    /// The node won the election for `term`: arm the first tick.
    pub fn become_leader(&mut self, host: &mut impl Host, term: u64) {
        self.arm(host);
        host.log(
            Level::Debug,
            &format!(
                "leader in term {term}: {} runs every {} ms",
                self.config.job, self.config.period_ms
            ),
        );
    }

    /// The node follows (or waits for) another leader: stop running.
    pub fn become_follower(&mut self, host: &mut impl Host) {
        if let Some(id) = self.pending.take() {
            host.cancel_schedule(id);
        }
    }

    /// A wake-up is due: run the job if it is our tick and we still lead.
    pub fn scheduled(&mut self, host: &mut impl Host, id: u64, tag: &str) {
        if tag != TICK || self.pending != Some(id) {
            host.log(
                Level::Debug,
                &format!("ignoring wake-up {id} {tag:?}: not the pending tick"),
            );
            return;
        }
        self.pending = None;
        if !host.is_leader() {
            host.log(Level::Debug, "tick while not leading: not running");
            return;
        }
        self.runs = self.runs.saturating_add(1);
        let term = host.current_term();
        self.last_run_term = Some(term);
        let line = format!(
            "run {} of {} by {} in term {term}{}",
            self.runs,
            self.config.job,
            host.this_node(),
            BUILD_LABEL.map(|l| format!(" ({l})")).unwrap_or_default()
        );
        host.log(Level::Info, &line);
        self.pending = Some(host.schedule(self.config.period_ms, TICK));
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
            pending: self.pending,
        }
        .encode()
    }

    /// Takes over a previous version's state. Its pending tick comes with
    /// the swap and replaces any this instance armed in `start`. Then, if
    /// the node leads and no tick is pending, the tick is re-armed: this is
    /// how a hot-swapped scheduler resumes leader duties. A follower drops
    /// any handed-over tick.
    pub fn restore(&mut self, host: &mut impl Host, snapshot: &[u8]) -> Result<(), String> {
        let state = State::decode(snapshot)?;
        self.runs = state.runs;
        self.last_run_term = state.last_run_term;
        if let Some(theirs) = state.pending
            && let Some(mine) = self.pending.replace(theirs)
            && mine != theirs
        {
            host.cancel_schedule(mine);
        }
        if !host.is_leader() {
            self.become_follower(host);
        } else if self.pending.is_none() {
            self.arm(host);
            host.log(
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
    fn arm(&mut self, host: &mut impl Host) {
        if let Some(id) = self.pending.take() {
            host.cancel_schedule(id);
        }
        self.pending = Some(host.schedule(self.config.period_ms, TICK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose leadership the test sets, recording what the plugin
    /// asked of it.
    #[derive(Default)]
    struct FakeHost {
        leader: bool,
        term: u64,
        next_id: u64,
        /// Scheduled and not cancelled: (id, after_ms, tag).
        scheduled: Vec<(u64, u64, String)>,
        logs: Vec<(Level, String)>,
    }

    impl Host for FakeHost {
        fn is_leader(&self) -> bool {
            self.leader
        }
        fn current_term(&self) -> u64 {
            self.term
        }
        fn this_node(&self) -> String {
            "n1".to_string()
        }
        fn schedule(&mut self, after_ms: u64, tag: &str) -> u64 {
            self.next_id += 1;
            self.scheduled
                .push((self.next_id, after_ms, tag.to_string()));
            self.next_id
        }
        fn cancel_schedule(&mut self, id: u64) {
            self.scheduled.retain(|(i, _, _)| *i != id);
        }
        fn log(&mut self, level: Level, message: &str) {
            self.logs.push((level, message.to_string()));
        }
    }

    impl FakeHost {
        /// Fires the only pending wake-up into `scheduler`.
        fn fire(&mut self, scheduler: &mut Scheduler) {
            assert_eq!(self.scheduled.len(), 1, "{:?}", self.scheduled);
            let (id, _, tag) = self.scheduled.remove(0);
            scheduler.scheduled(self, id, &tag);
        }

        fn info_lines(&self) -> Vec<&str> {
            self.logs
                .iter()
                .filter(|(level, _)| *level == Level::Info)
                .map(|(_, line)| line.as_str())
                .collect()
        }
    }

    fn scheduler() -> Scheduler {
        Scheduler::new(Config {
            period_ms: 250,
            job: "backup".to_string(),
        })
    }

    #[test]
    fn runs_while_leading_and_stops_when_following() {
        let mut host = FakeHost::default();
        let mut s = scheduler();
        s.start(&mut host);
        assert!(host.scheduled.is_empty(), "a follower schedules nothing");

        host.leader = true;
        host.term = 3;
        s.become_leader(&mut host, 3);
        assert_eq!(host.scheduled, [(1, 250, "tick".to_string())]);
        host.fire(&mut s);
        host.fire(&mut s);
        assert_eq!(
            host.info_lines(),
            [
                "run 1 of backup by n1 in term 3",
                "run 2 of backup by n1 in term 3"
            ]
        );

        host.leader = false;
        s.become_follower(&mut host);
        assert!(host.scheduled.is_empty(), "stepping down cancels the tick");
        assert_eq!(s.call(b"runs"), Ok(b"2".to_vec()));
        assert_eq!(s.inspect()[3], ("last-run-term".into(), "3".into()));
        assert_eq!(s.inspect()[4], ("tick-pending".into(), "false".into()));
    }

    #[test]
    fn a_tick_after_losing_leadership_does_not_run() {
        let mut host = FakeHost {
            leader: true,
            term: 1,
            ..FakeHost::default()
        };
        let mut s = scheduler();
        s.become_leader(&mut host, 1);
        host.leader = false;
        host.fire(&mut s);
        assert!(host.info_lines().is_empty());
        assert!(host.scheduled.is_empty(), "no next tick");
    }

    #[test]
    fn stale_and_foreign_wake_ups_are_ignored() {
        let mut host = FakeHost {
            leader: true,
            term: 1,
            ..FakeHost::default()
        };
        let mut s = scheduler();
        s.become_leader(&mut host, 1);
        s.become_leader(&mut host, 1); // re-delivered: still one chain
        assert_eq!(host.scheduled.len(), 1);
        s.scheduled(&mut host, 1, TICK); // the first, cancelled tick
        s.scheduled(&mut host, 2, "other");
        assert!(host.info_lines().is_empty());
        host.fire(&mut s);
        assert_eq!(host.info_lines(), ["run 1 of backup by n1 in term 1"]);
    }

    #[test]
    fn a_fresh_instance_on_a_leader_starts_running() {
        let mut host = FakeHost {
            leader: true,
            term: 4,
            ..FakeHost::default()
        };
        let mut s = scheduler();
        s.start(&mut host);
        host.fire(&mut s);
        assert_eq!(host.info_lines(), ["run 1 of backup by n1 in term 4"]);
    }

    #[test]
    fn hot_swap_keeps_numbering_and_one_chain_of_ticks() {
        let mut host = FakeHost {
            leader: true,
            term: 2,
            ..FakeHost::default()
        };
        let mut old = scheduler();
        old.become_leader(&mut host, 2);
        host.fire(&mut old);
        let snapshot = old.snapshot();

        // The new version is initialised on a leader (arming its own tick),
        // then restored with the old version's pending tick handed over.
        let mut new = scheduler();
        new.start(&mut host);
        assert_eq!(host.scheduled.len(), 2);
        new.restore(&mut host, &snapshot).expect("restores");
        assert_eq!(host.scheduled.len(), 1, "own tick cancelled");
        host.fire(&mut new);
        assert_eq!(
            host.info_lines().last(),
            Some(&"run 2 of backup by n1 in term 2")
        );
    }

    #[test]
    fn restore_on_a_leader_without_a_pending_tick_rearms() {
        let mut host = FakeHost::default();
        let mut old = scheduler();
        old.runs = 7;
        let snapshot = old.snapshot(); // taken while following

        host.leader = true;
        host.term = 5;
        let mut new = scheduler();
        new.restore(&mut host, &snapshot).expect("restores");
        assert_eq!(host.scheduled.len(), 1);
        host.fire(&mut new);
        assert_eq!(
            host.info_lines().last(),
            Some(&"run 8 of backup by n1 in term 5")
        );
    }

    #[test]
    fn restore_on_a_follower_drops_the_handed_over_tick() {
        let mut host = FakeHost {
            leader: true,
            term: 2,
            ..FakeHost::default()
        };
        let mut old = scheduler();
        old.become_leader(&mut host, 2);
        let snapshot = old.snapshot();
        host.leader = false;
        let mut new = scheduler();
        new.restore(&mut host, &snapshot).expect("restores");
        assert!(host.scheduled.is_empty());
        assert_eq!(new.inspect()[4], ("tick-pending".into(), "false".into()));
    }

    #[test]
    fn restore_of_garbage_changes_nothing() {
        let mut host = FakeHost::default();
        let mut s = scheduler();
        s.runs = 3;
        assert!(s.restore(&mut host, b"nonsense").is_err());
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
