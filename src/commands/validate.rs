//! `validate`: the inventory and settings are read and checked; no host is contacted.

use anyhow::Result;

use crate::app::Loaded;

/// Prints what the inventory holds.
pub fn run(loaded: &Loaded) -> Result<i32> {
    let inv = &loaded.inventory;
    let counts: Vec<String> = std::iter::once(format!("{} node(s)", inv.nodes.len()))
        .chain(loaded.systems.all.iter().filter_map(|s| s.summary(inv)))
        .collect();
    println!("{}: {}: ok", inv.source.display(), counts.join(", "));
    Ok(0)
}
