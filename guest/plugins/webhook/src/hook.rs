//! The webhook and the leader-only job, on the SDK's node and HTTP API
//! (the fake node in `cargo test`).

use std::collections::VecDeque;
use std::time::Duration;

use tenure_sdk::http::{HttpError, Pending, Request, Response};
use tenure_sdk::{Config, ConfigError, Term, WakeupId, info, node, warn};

/// Outcomes kept for `seen`.
const KEEP: usize = 100;

/// Webhook posts and probes kept pending at most: the node allows 8
/// requests in flight by default (`http-max-concurrent`), and the job
/// needs one.
const MAX_PENDING: usize = 4;

/// How often pending webhook posts and probes are looked at.
const COLLECT_EVERY: Duration = Duration::from_millis(50);

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where leadership changes are posted, if anywhere.
    pub webhook: Option<String>,
    /// Where the leader's job posts, if anywhere.
    pub job_url: Option<String>,
    /// Time between two runs of the job.
    pub period: Duration,
    /// How long a webhook post (or probe) waits for its response inside
    /// the callback that made it; one not answered by then is looked at
    /// again every 50 ms, in later callbacks, until it is in.
    pub wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            webhook: None,
            job_url: None,
            period: Duration::from_millis(500),
            wait: Duration::from_millis(30),
        }
    }
}

impl Settings {
    /// Reads `webhook`, `job-url`, `period-ms` (10..=600000) and `wait-ms`
    /// (0..=80, inside the default 100 ms deadline).
    pub fn parse(config: &Config) -> Result<Settings, ConfigError> {
        config.allow_only(&["webhook", "job-url", "period-ms", "wait-ms"])?;
        let url = |key: &str| -> Result<Option<String>, ConfigError> {
            match config.get(key) {
                None => Ok(None),
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                    Ok(Some(u.to_string()))
                }
                Some(u) => Err(invalid(key, u, "not an http:// or https:// URL")),
            }
        };
        let period_ms: u64 = config.parse_or("period-ms", 500)?;
        if !(10..=600_000).contains(&period_ms) {
            return Err(invalid(
                "period-ms",
                &period_ms.to_string(),
                "must be between 10 and 600000",
            ));
        }
        let wait_ms: u64 = config.parse_or("wait-ms", 30)?;
        if wait_ms > 80 {
            return Err(invalid(
                "wait-ms",
                &wait_ms.to_string(),
                "must be at most 80 (the callback deadline is 100 ms)",
            ));
        }
        Ok(Settings {
            webhook: url("webhook")?,
            job_url: url("job-url")?,
            period: Duration::from_millis(period_ms),
            wait: Duration::from_millis(wait_ms),
        })
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The state: the job's wake-up and request in flight, the webhook posts
/// still pending and their wake-up, and what came of every request.
pub struct Hook {
    settings: Settings,
    tick: Option<WakeupId>,
    job: Option<(String, Pending)>,
    /// Webhook posts and probes started but not answered yet, oldest first.
    pending: VecDeque<(String, Pending)>,
    /// The wake-up that looks at `pending` again.
    collect: Option<WakeupId>,
    runs: u64,
    seen: VecDeque<String>,
}

impl Hook {
    /// A hook with `settings`, idle.
    pub fn new(settings: Settings) -> Hook {
        Hook {
            settings,
            tick: None,
            job: None,
            pending: VecDeque::new(),
            collect: None,
            runs: 0,
            seen: VecDeque::new(),
        }
    }

    /// Posts the change and starts the job's rhythm.
    pub fn became_leader(&mut self, term: Term) {
        self.notify("leader", term);
        if self.settings.job_url.is_some() && self.tick.is_none() {
            self.tick = Some(node::schedule(self.settings.period, "job"));
        }
    }

    /// Posts the change and stops the job.
    pub fn became_follower(&mut self, term: Term) {
        if let Some(id) = self.tick.take() {
            node::cancel(id);
        }
        self.notify("follower", term);
    }

    /// A wake-up: the job's tick (records how the last run went, starts
    /// the next), or the one that looks at pending webhook posts.
    pub fn tick(&mut self, id: WakeupId) {
        if self.collect == Some(id) {
            self.collect = None;
            self.collect_pending();
            return;
        }
        if self.tick != Some(id) {
            return;
        }
        self.tick = None;
        self.collect_job();
        let Some(url) = self.settings.job_url.clone() else {
            return;
        };
        if !node::is_leader() {
            return;
        }
        if self.job.is_none() {
            self.runs += 1;
            let body = format!(
                r#"{{"node":"{}","term":{},"run":{}}}"#,
                node::this_node(),
                node::term(),
                self.runs
            );
            match Request::post(url.clone(), body)
                .header("content-type", "application/json")
                .start()
            {
                Ok(pending) => self.job = Some((url, pending)),
                Err(e) => self.record(&url, Err(e)),
            }
        }
        self.tick = Some(node::schedule(self.settings.period, "job"));
    }

    /// Records the job's outcome if it is in.
    fn collect_job(&mut self) {
        let Some((url, mut pending)) = self.job.take() else {
            return;
        };
        match pending.try_get() {
            Some(outcome) => self.record(&url, outcome),
            None => self.job = Some((url, pending)),
        }
    }

    fn notify(&mut self, event: &str, term: Term) {
        let Some(url) = self.settings.webhook.clone() else {
            return;
        };
        let body = format!(
            r#"{{"node":"{}","event":"{event}","term":{term}}}"#,
            node::this_node()
        );
        let request = Request::post(url.clone(), body).header("content-type", "application/json");
        self.start(url, request);
    }

    /// Starts `request` now and waits for it at most `wait`; one not
    /// answered by then stays pending, looked at again every
    /// [`COLLECT_EVERY`] until it is in (start now, collect later: a slow
    /// webhook is never abandoned, and never holds up a callback). Returns
    /// whether the outcome is in (and recorded) already.
    fn start(&mut self, url: String, request: Request) -> bool {
        let mut pending = match request.start() {
            Ok(pending) => pending,
            Err(e) => {
                self.record(&url, Err(e));
                return true;
            }
        };
        if let Some(outcome) = pending.wait(self.settings.wait) {
            self.record(&url, outcome);
            return true;
        }
        self.pending.push_back((url, pending));
        while self.pending.len() > MAX_PENDING {
            if let Some((oldest, _)) = self.pending.pop_front() {
                self.seen_line(format!(
                    "{oldest} error: abandoned, {MAX_PENDING} newer pending"
                ));
            }
        }
        if self.collect.is_none() {
            self.collect = Some(node::schedule(COLLECT_EVERY, "collect"));
        }
        false
    }

    /// Records every pending post that is in; looks again later at the rest.
    fn collect_pending(&mut self) {
        for (url, mut pending) in std::mem::take(&mut self.pending) {
            match pending.try_get() {
                Some(outcome) => self.record(&url, outcome),
                None => self.pending.push_back((url, pending)),
            }
        }
        if !self.pending.is_empty() && self.collect.is_none() {
            self.collect = Some(node::schedule(COLLECT_EVERY, "collect"));
        }
    }

    fn record(&mut self, url: &str, outcome: Result<Response, HttpError>) {
        let line = match &outcome {
            Ok(r) => format!("{url} {}", r.status),
            Err(e) => format!("{url} error: {e}"),
        };
        match &outcome {
            Ok(r) if r.is_success() => info!("{line}"),
            _ => warn!("{line}"),
        }
        self.seen_line(line);
    }

    fn seen_line(&mut self, line: String) {
        self.seen.push_back(line);
        while self.seen.len() > KEEP {
            self.seen.pop_front();
        }
    }

    /// A GET of `url` now, optionally with one `header` (`NAME:VALUE`),
    /// waiting `wait`: its outcome as `seen` shows it, or `URL pending`
    /// (`seen` shows the outcome once it is in).
    pub fn probe(&mut self, url: &str, header: Option<(&str, &str)>) -> String {
        let mut request = Request::get(url);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        if !self.start(url.to_string(), request) {
            return format!("{url} pending");
        }
        self.seen.back().cloned().unwrap_or_default()
    }

    /// The outcomes, one per line, oldest first.
    pub fn seen(&self) -> String {
        self.seen.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Runs started, and whether one is in flight.
    pub fn inspect(&self) -> Vec<(String, String)> {
        vec![
            ("runs".into(), self.runs.to_string()),
            ("job-in-flight".into(), self.job.is_some().to_string()),
            ("webhooks-pending".into(), self.pending.len().to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_sdk::fake;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::parse(&Config::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn config_is_checked() {
        assert_eq!(settings(&[]), Ok(Settings::default()));
        assert!(settings(&[("webhook", "ftp://x")]).is_err());
        assert!(settings(&[("period-ms", "5")]).is_err());
        assert!(settings(&[("wait-ms", "500")]).is_err());
        assert!(settings(&[("colour", "red")]).is_err());
        let s = settings(&[("job-url", "http://127.0.0.1:9/jobs")]).expect("ok");
        assert_eq!(s.job_url.as_deref(), Some("http://127.0.0.1:9/jobs"));
    }

    #[test]
    fn a_leader_posts_the_change_and_runs_its_job_until_it_follows() {
        fake::reset();
        let mut hook = Hook::new(
            settings(&[("webhook", "http://hooks/"), ("job-url", "http://jobs/run")]).expect("ok"),
        );
        fake::with(|n| {
            n.lead(3);
            n.http_responses.push_back(Ok(Response::new(200, "")));
            n.http_responses.push_back(Ok(Response::new(201, "")));
        });
        hook.became_leader(3);
        let tick = fake::with(|n| n.pop_wakeup()).expect("the job is scheduled");
        hook.tick(tick.id);
        let requests = fake::with(|n| n.http_requests.clone());
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0].body,
            br#"{"node":"n1","event":"leader","term":3}"#
        );
        assert_eq!(requests[1].body, br#"{"node":"n1","term":3,"run":1}"#);
        let next = fake::with(|n| n.pop_wakeup()).expect("rescheduled");
        hook.tick(next.id);
        assert_eq!(hook.seen(), "http://hooks/ 200\nhttp://jobs/run 201");
        fake::with(|n| n.follow(Some("n2"), 4));
        hook.became_follower(4);
        assert!(fake::with(|n| n.scheduled.is_empty()), "the job stopped");
        assert!(hook.seen().ends_with(
            "http://hooks/ error: refused by the node (allowlist, leadership or limit)"
        ));
    }
}
