//! A Tenure behaviour plugin that acts on the world over HTTP.
//!
//! - On every leadership change it POSTs `{"node":..,"event":"leader"|
//!   "follower","term":..}` to `webhook` (when configured). Every node does
//!   this, so the node's allowlist puts that server in `mode = "any"`.
//! - While leading, every `period-ms` it POSTs `{"node":..,"term":..,
//!   "run":n}` to `job-url` (when configured): the leader-only job. The
//!   node's allowlist lists that server in `leader` mode (a bare URL), so
//!   the host refuses the request unless this node leads with a lease, and
//!   adds the fencing token header to every one it lets through.
//!
//! The job never waits inside a callback: each run starts its request
//! (`tenure_sdk::http::Request::start`) and the next tick looks at how it
//! went, so a slow or hung job server never holds up a callback. A webhook
//! post waits at most `wait-ms` (default 30) inside the callback; one not
//! answered by then is not abandoned but looked at again every 50 ms (a
//! wake-up) until it is in, so a slow webhook still hears every change.
//!
//! `on-call` with `seen` answers one line per outcome (`URL STATUS` or
//! `URL error: WHY`), oldest first, at most the last 100; `get URL
//! [NAME:VALUE]` makes a GET there now (with that header, if given),
//! waiting `wait-ms`, and answers its outcome the same way, or `URL
//! pending` (then `seen` shows it once it is in) — a probe of what this
//! node's allowlist lets through.
//!
//! Build: `cargo build -p tenure-plugin-webhook --target wasm32-wasip2
//! --release` writes `target/wasm32-wasip2/release/tenure_plugin_webhook.wasm`.

#![forbid(unsafe_code)]

mod hook;

use tenure_sdk::{Behaviour, Config, Error, Term, WakeupId};

use crate::hook::{Hook, Settings};

/// The behaviour: callbacks go to [`Hook`].
#[derive(Default)]
struct Plugin {
    hook: Option<Hook>,
}

impl Plugin {
    fn hook(&mut self) -> &mut Hook {
        self.hook
            .get_or_insert_with(|| Hook::new(Settings::default()))
    }
}

impl Behaviour for Plugin {
    fn init(&mut self, config: &Config) -> Result<(), Error> {
        self.hook = Some(Hook::new(Settings::parse(config)?));
        Ok(())
    }

    fn on_become_leader(&mut self, term: Term) -> Result<(), Error> {
        self.hook().became_leader(term);
        Ok(())
    }

    fn on_become_follower(&mut self, _leader: Option<&str>, term: Term) {
        self.hook().became_follower(term);
    }

    fn on_scheduled(&mut self, id: WakeupId, _tag: &str) {
        self.hook().tick(id);
    }

    fn on_call(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let request = String::from_utf8_lossy(request);
        match request.split_once(' ') {
            None if request == "seen" => Ok(self.hook().seen().into_bytes()),
            Some(("get", rest)) => {
                let (url, header) = match rest.split_once(' ') {
                    Some((url, header)) => (url, header.split_once(':')),
                    None => (rest, None),
                };
                Ok(self.hook().probe(url, header).into_bytes())
            }
            _ => Err(Error::new(format!(
                "unknown request {request:?}; try `seen` or `get URL [NAME:VALUE]`"
            ))),
        }
    }

    fn inspect(&mut self) -> Vec<(String, String)> {
        self.hook().inspect()
    }

    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), Error> {
        // A new version on a leader resumes the job at once.
        if tenure_sdk::node::is_leader() {
            self.hook().became_leader(tenure_sdk::node::term());
        }
        Ok(())
    }
}

tenure_sdk::export!(Plugin);
