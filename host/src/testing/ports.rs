//! Loopback ports for tests and benchmarks that start real processes.
//!
//! A node's config names its peers' ports before any of them starts, so a
//! process cluster cannot let the kernel choose (port 0). Probing for a
//! free port and hoping is how suites go flaky: a port that is free now can
//! be handed to a second test before the first one binds it, or be taken
//! by an outgoing connection in between. This allocator rules both out:
//!
//! - ports come from outside the kernel's ephemeral range (read from
//!   `/proc/sys/net/ipv4/ip_local_port_range`), which is where outgoing
//!   connections and port-0 listeners get theirs, so nothing else this run
//!   does can take them;
//! - one process-wide allocator hands them out, so a port is never handed
//!   out twice in one process, and a block ([`reserve`]) is contiguous and
//!   reserved in one step — nothing can be handed a port inside it;
//! - each process starts in a region of its own, chosen by its pid, so two
//!   test processes running at once (two clones' suites) rarely meet, and
//!   every port is checked bindable when handed out, so one that another
//!   program holds is skipped.
//!
//! ```
//! use tenure_host::testing::ports;
//! let peers = ports::reserve(3).expect("ports");
//! let admin = ports::port().expect("a port");
//! assert!(!peers.contains(admin));
//! assert_eq!(peers.port(2), peers.first() + 2);
//! ```

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Range;
use std::sync::Mutex;

/// The lowest port handed out: below it live well-known services.
const LOWEST: u32 = 10_000;
/// How many regions the usable range is cut into, one chosen per process.
const REGIONS: u32 = 16;

/// The allocator ran out of usable ports (or was asked for a block larger
/// than the usable range).
#[derive(Debug, thiserror::Error)]
#[error("no free block of {wanted} loopback ports left in {range:?} for this process")]
pub struct PortsExhausted {
    /// The size of the block asked for.
    pub wanted: u16,
    /// The range ports are handed out from.
    pub range: Range<u32>,
}

/// A run of consecutive loopback ports reserved for one caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortBlock {
    first: u16,
    len: u16,
}

impl PortBlock {
    /// The first port of the block.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// How many ports the block holds.
    pub fn len(&self) -> u16 {
        self.len
    }

    /// Whether the block is empty (never, for a block from [`reserve`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `index`th port of the block.
    ///
    /// # Panics
    /// If `index` is not below [`PortBlock::len`]: a port outside the
    /// block was never reserved.
    pub fn port(&self, index: u16) -> u16 {
        assert!(
            index < self.len,
            "port {index} of a block of {}: not reserved",
            self.len
        );
        self.first + index
    }

    /// `127.0.0.1:` the `index`th port.
    pub fn addr(&self, index: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port(index)))
    }

    /// Whether `port` lies in this block.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..self.first + self.len).contains(&port)
    }
}

/// The allocator's state: the usable range and the next port to try.
struct Allocator {
    range: Range<u32>,
    next: u32,
    /// Ports passed over so far (handed out or skipped); never more than
    /// the range holds, so no port is ever handed out twice.
    spent: u32,
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// One free loopback port, never handed out before in this process.
pub fn port() -> Result<u16, PortsExhausted> {
    reserve(1).map(|block| block.first)
}

/// `len` consecutive free loopback ports, none of them handed out before
/// in this process, reserved together: for a program that derives ports
/// from a base (`tenure demo --base-port`).
pub fn reserve(len: u16) -> Result<PortBlock, PortsExhausted> {
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    let allocator = guard.get_or_insert_with(Allocator::new);
    allocator.reserve(len)
}

impl Allocator {
    fn new() -> Allocator {
        let range = usable_range(ephemeral_range());
        let region = (range.end - range.start) / REGIONS;
        let next = range.start + (std::process::id() % REGIONS) * region;
        Allocator {
            range,
            next,
            spent: 0,
        }
    }

    fn reserve(&mut self, len: u16) -> Result<PortBlock, PortsExhausted> {
        let wanted = u32::from(len.max(1));
        let exhausted = || PortsExhausted {
            wanted: len,
            range: self.range.clone(),
        };
        let size = self.range.end - self.range.start;
        loop {
            if self.next + wanted > self.range.end {
                // Wrap to the start; the ports passed over count as spent.
                self.spent += self.range.end - self.next;
                self.next = self.range.start;
            }
            if self.spent + wanted > size {
                return Err(exhausted());
            }
            let first = self.next;
            self.next += wanted;
            self.spent += wanted;
            match (first..first + wanted).find(|&p| !bindable(p)) {
                // Start again after the busy port (those before it stay
                // spent: simpler than handing them out later, and there
                // are thousands).
                Some(busy) => {
                    let unused = first + wanted - (busy + 1);
                    self.next = busy + 1;
                    self.spent -= unused;
                }
                None => {
                    let first = u16::try_from(first).map_err(|_| exhausted())?;
                    return Ok(PortBlock {
                        first,
                        len: len.max(1),
                    });
                }
            }
        }
    }
}

/// Whether `port` can be bound on 127.0.0.1 right now.
fn bindable(port: u32) -> bool {
    u16::try_from(port).is_ok_and(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
}

/// The kernel's ephemeral port range (Linux's default if unreadable).
fn ephemeral_range() -> Range<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut words = text.split_whitespace().map(str::parse::<u32>);
            match (words.next(), words.next()) {
                (Some(Ok(low)), Some(Ok(high))) if low <= high => Some(low..high + 1),
                _ => None,
            }
        })
        .unwrap_or(32_768..61_000)
}

/// The larger of the two stretches outside `ephemeral` (and above
/// [`LOWEST`]).
fn usable_range(ephemeral: Range<u32>) -> Range<u32> {
    let below = LOWEST..ephemeral.start.max(LOWEST);
    let above = ephemeral.end.max(LOWEST)..65_536;
    if below.end - below.start >= above.end - above.start {
        below
    } else {
        above
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usable_range_avoids_the_ephemeral_one() {
        assert_eq!(usable_range(32_768..61_000), 10_000..32_768);
        assert_eq!(usable_range(1_024..40_000), 40_000..65_536);
    }

    #[test]
    fn blocks_never_overlap_and_ports_never_repeat() {
        let mut seen = std::collections::BTreeSet::new();
        for len in [1, 103, 3, 1, 7, 1] {
            let block = reserve(len).expect("ports");
            assert_eq!(block.len(), len);
            for i in 0..len {
                assert!(seen.insert(block.port(i)), "{} twice", block.port(i));
            }
        }
        let ephemeral = ephemeral_range();
        assert!(seen.iter().all(|p| !ephemeral.contains(&u32::from(*p))));
    }

    #[test]
    fn a_busy_port_is_skipped() {
        let mut allocator = Allocator::new();
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, allocator.next as u16));
        let block = allocator.reserve(5).expect("ports");
        if held.is_ok() {
            assert!(u32::from(block.first()) > allocator.range.start);
        }
        let all_free = (0..5).all(|i| bindable(u32::from(block.port(i))));
        assert!(all_free);
    }

    #[test]
    fn a_small_range_runs_out_instead_of_repeating() {
        let mut allocator = Allocator {
            range: 20_000..20_010,
            next: 20_005,
            spent: 0,
        };
        let mut handed = Vec::new();
        while let Ok(block) = allocator.reserve(2) {
            handed.push(block.first());
        }
        handed.sort_unstable();
        handed.dedup();
        assert!(handed.len() <= 5, "{handed:?}");
    }
}
