//! The webhook and the leader-only job, on the SDK's node and HTTP API
//! (the fake node in `cargo test`).

use std::collections::VecDeque;
use std::time::Duration;

use tenure_sdk::http::{HttpError, Pending, Request, Response};
use tenure_sdk::{Config, ConfigError, Term, WakeupId, info, node, warn};

/// Outcomes kept for `seen`.
const KEEP: usize = 100;

/// The plugin's config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Where leadership changes are posted, if anywhere.
    pub webhook: Option<String>,
    /// Where the leader's job posts, if anywhere.
    pub job_url: Option<String>,
    /// Time between two runs of the job.
    pub period: Duration,
    /// How long the webhook waits for its response inside a callback.
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

/// The state: the job's wake-up and request in flight, and what came of
/// every request.
pub struct Hook {
    settings: Settings,
    tick: Option<WakeupId>,
    job: Option<(String, Pending)>,
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

    /// A tick of the job: records how the last run went, starts the next.
    pub fn tick(&mut self, id: WakeupId) {
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
        let outcome = Request::post(url.clone(), body)
            .header("content-type", "application/json")
            .send(self.settings.wait);
        self.record(&url, outcome);
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
        self.seen.push_back(line);
        while self.seen.len() > KEEP {
            self.seen.pop_front();
        }
    }

    /// A GET of `url` now, waiting `wait`; its outcome as `seen` shows it.
    pub fn probe(&mut self, url: &str) -> String {
        let outcome = Request::get(url).send(self.settings.wait);
        self.record(url, outcome);
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
