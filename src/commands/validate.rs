//! `validate`: the inventory and settings are read and checked; no host is contacted.

use anyhow::Result;

use crate::app::Loaded;
use crate::roles;

/// Prints what the inventory holds.
pub fn run(loaded: &Loaded) -> Result<i32> {
    let inv = &loaded.inventory;
    let counts: Vec<String> = std::iter::once(format!("{} node(s)", inv.nodes.len()))
        .chain(roles::ALL.iter().filter_map(|r| r.summary(inv)))
        .collect();
    println!("{}: {}: ok", inv.source.display(), counts.join(", "));
    Ok(0)
}
