//! The text the lock service reads: client requests (one line of
//! whitespace-separated words) and the tags of its own wake-ups.

/// The requests understood, for error messages.
pub const USAGE: &str =
    "usage: `acquire NAME HOLDER TTL_MS`, `release NAME HOLDER` or `query NAME`";

/// The tag of the wake-up that ends a new leader's warm-up.
pub const GRACE_TAG: &str = "grace";

/// A client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Take (or renew) lock `name` for `holder` for `ttl_ms`.
    Acquire {
        /// The lock.
        name: &'a str,
        /// Who asks for it.
        holder: &'a str,
        /// How long the grant lasts, in milliseconds.
        ttl_ms: u64,
    },
    /// Give lock `name` back; only its holder may.
    Release {
        /// The lock.
        name: &'a str,
        /// Who gives it back.
        holder: &'a str,
    },
    /// Who holds lock `name`, if anyone.
    Query {
        /// The lock.
        name: &'a str,
    },
}

impl Request<'_> {
    /// Parses a request: UTF-8 text, a verb and its arguments separated by
    /// whitespace (a trailing newline is fine). Malformed requests are
    /// refused with the usage.
    pub fn parse(request: &[u8]) -> Result<Request<'_>, String> {
        let text =
            std::str::from_utf8(request).map_err(|_| format!("request is not UTF-8; {USAGE}"))?;
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        match words[..] {
            ["acquire", name, holder, ttl] => {
                let ttl_ms = ttl.parse::<u64>().map_err(|_| {
                    format!("TTL_MS: must be an integer number of milliseconds, got {ttl:?}")
                })?;
                Ok(Request::Acquire {
                    name,
                    holder,
                    ttl_ms,
                })
            }
            ["release", name, holder] => Ok(Request::Release { name, holder }),
            ["query", name] => Ok(Request::Query { name }),
            _ => Err(format!("malformed request {text:?}; {USAGE}")),
        }
    }
}

/// One of the lock service's own wake-ups, told apart by its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup<'a> {
    /// The new leader's warm-up is over.
    Grace,
    /// Grant number `seq` of lock `name` has run out.
    Expire {
        /// The lock.
        name: &'a str,
        /// The grant's SEQ; a later grant of the same lock has another.
        seq: u64,
    },
}

impl Wakeup<'_> {
    /// Reads a tag made by [`expire_tag`] or [`GRACE_TAG`]; `None` for
    /// anything else.
    pub fn parse(tag: &str) -> Option<Wakeup<'_>> {
        if tag == GRACE_TAG {
            return Some(Wakeup::Grace);
        }
        let words: Vec<&str> = tag.split_ascii_whitespace().collect();
        match words[..] {
            ["expire", name, seq] => seq.parse().ok().map(|seq| Wakeup::Expire { name, seq }),
            _ => None,
        }
    }
}

/// The tag of the wake-up that expires grant `seq` of lock `name`.
pub fn expire_tag(name: &str, seq: u64) -> String {
    format!("expire {name} {seq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(
            Request::parse(b"acquire db app-1 5000\n"),
            Ok(Request::Acquire {
                name: "db",
                holder: "app-1",
                ttl_ms: 5000
            })
        );
        assert_eq!(
            Request::parse(b"release  db app-1"),
            Ok(Request::Release {
                name: "db",
                holder: "app-1"
            })
        );
        assert_eq!(
            Request::parse(b"query db"),
            Ok(Request::Query { name: "db" })
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        for (request, expected) in [
            (&b"acquire db app"[..], "usage"),
            (b"acquire db app 5s", "TTL_MS: must be an integer"),
            (b"acquire db app -1", "TTL_MS"),
            (b"query", "usage"),
            (b"query a b", "usage"),
            (b"grab db", "usage"),
            (b"", "usage"),
            (b"query \xff", "not UTF-8"),
        ] {
            let error = Request::parse(request).expect_err("malformed");
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn wakeup_tags_round_trip() {
        assert_eq!(Wakeup::parse(GRACE_TAG), Some(Wakeup::Grace));
        assert_eq!(
            Wakeup::parse(&expire_tag("db", 7)),
            Some(Wakeup::Expire { name: "db", seq: 7 })
        );
        assert_eq!(Wakeup::parse("expire db x"), None);
        assert_eq!(Wakeup::parse("tick"), None);
    }
}
