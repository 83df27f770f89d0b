//! nftables rule sets: one file loaded with `nft -f` (a single transaction), checked with
//! `nft -c -f` before it goes live. Loading is done by the firewall tool, which arms a
//! revert first; removing the file first takes its table out of the kernel.

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// The tool that loads, confirms, reverts and checks the rules on the node.
pub const TOOL: &str = "/usr/local/lib/vds-proxy/firewall";
/// The rules file.
pub const RULES: &str = "/etc/vds-proxy/firewall.nft";
/// The nftables table vds-proxy owns; nothing else is touched.
pub const TABLE: &str = "inet vds_proxy";

/// An nftables rule set (`nft -f` input) loaded with a revert armed.
pub const NFTABLES: Kind = Kind::new("nftables", &NftablesOps);

/// Behaviour of [`NFTABLES`].
pub struct NftablesOps;

impl KindOps for NftablesOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("nft -c -f {}", quote(staged)))
    }

    fn before_remove(&self, _path: &str) -> Option<String> {
        Some(format!("{TOOL} forget"))
    }
}

/// The rules file with `text`.
pub fn rules(text: String) -> Resource {
    Resource::text(NFTABLES, RULES, text, 0o644)
}
