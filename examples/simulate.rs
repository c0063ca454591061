//! Drive the compiled election component in the simulator from your own
//! code: three nodes elect a leader, the leader crashes, a new one takes
//! over, the old one rejoins as a follower.
//!
//! ```sh
//! scripts/build-guests.sh
//! cargo run -p tenure-host --example simulate
//! ```

use tenure_host::component_path::load_election;
use tenure_host::sim::{NodeSpec, Simulation};

const MS: u64 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let component = load_election(None)?;
    let ids = ["n1", "n2", "n3"];
    let mut sim = Simulation::new(component, 7);
    for id in ids {
        sim.add_node(NodeSpec::new(id, "example", &ids))?;
    }

    let (leader, term, took) = sim.run_until_agreement("example", 3_000 * MS)?;
    println!("{leader} leads term {term} after {} ms", took / MS);

    let index = ids.iter().position(|id| *id == leader).unwrap_or(0);
    sim.crash(index);
    let (leader, term, took) = sim.run_until_agreement("example", 3_000 * MS)?;
    println!(
        "after the crash, {leader} leads term {term} ({} ms later)",
        took / MS
    );

    sim.restart(index)?;
    sim.run_for(500 * MS);
    if let Some(status) = sim.status(index) {
        println!(
            "{} is back as a {:?} of {:?} in term {}",
            status.node_id, status.role, status.leader, status.term
        );
    }
    anyhow::ensure!(sim.violations().is_empty(), "{:?}", sim.violations());
    Ok(())
}
