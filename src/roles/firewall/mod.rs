//! The firewall: default-deny inbound on a node, with every port its systems listen on
//! (routes, balancers, WireGuard, sites, sshd — the inventory's port claims) allowed
//! automatically, plus an allow list (ports, ranges, source networks) and trusted
//! interfaces. nftables, in a table of its own (`inet vds_proxy`) that other tables (UFW,
//! the admin's own) do not touch.
//!
//! A change can never lock the deploy out: the tool (`firewall.sh`) arms a revert timer
//! before it loads new rules, and only a new SSH connection from vds-proxy afterwards
//! cancels it (the engine's [`crate::resources::Confirm`]); at boot only confirmed rules
//! are loaded. Inventory key `firewalls` (`parse.rs`); rules and unit in `plan.rs`.

pub mod nftables;
mod parse;
mod plan;

use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Status, StatusInput, Systems, Table};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::templates::TemplateError;

pub use plan::tool_text;

/// Seconds after which an unconfirmed change is reverted, unless `revert_after` says.
pub const REVERT_AFTER_DEFAULT: u32 = 60;

/// The firewall of one node.
#[derive(Debug, Clone)]
pub struct Firewall {
    /// Its JSON path, e.g. `$.firewalls[0]`.
    pub path: String,
    pub node: String,
    pub allow: Vec<Allow>,
    /// Interfaces whose inbound traffic is accepted whatever the port (a mesh, say).
    pub trusted_interfaces: Vec<String>,
    /// Seconds the host waits for a new SSH connection to confirm a change.
    pub revert_after: u32,
}

/// One entry of `allow`.
#[derive(Debug, Clone)]
pub struct Allow {
    /// Its JSON path.
    pub path: String,
    pub udp: bool,
    /// First and last port (equal for one port).
    pub ports: (u16, u16),
    /// Source addresses and networks; empty: any.
    pub from: Vec<String>,
}

#[derive(Debug, Default)]
struct Section {
    firewalls: Vec<Firewall>,
}

/// Every firewall of the inventory.
pub fn of(inv: &Inventory) -> &[Firewall] {
    &inv.section::<Section>().firewalls
}

/// The firewall of `node`, if it has one.
pub fn on<'a>(inv: &'a Inventory, node: &str) -> Option<&'a Firewall> {
    of(inv).iter().find(|f| f.node == node)
}

/// The firewall role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["firewalls"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let firewalls = top.objects(c, "firewalls", parse::firewall);
        into.insert(Section { firewalls });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, _claims: &mut Claims) {
        parse::validate(inv, of(inv), c);
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let n = of(inv).len();
        (n > 0).then(|| format!("{n} firewall(s)"))
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}

impl Table for System {
    fn table(&self, inv: &Inventory) -> Option<(&'static str, String)> {
        let mut t = String::from("NODE\tOPEN TO ALL\tOPEN TO SOME\tTRUSTED INTERFACES\n");
        for fw in of(inv) {
            let rules = plan::rules(inv, fw);
            let ports = |restricted: bool| {
                let list: Vec<String> = rules
                    .iter()
                    .filter(|r| r.restricted() == restricted)
                    .map(plan::Rule::label)
                    .collect();
                or_dash(&list)
            };
            t += &format!(
                "{}\t{}\t{}\t{}\n",
                fw.node,
                ports(false),
                ports(true),
                or_dash(&fw.trusted_interfaces)
            );
        }
        Some(("firewalls", t))
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        if on(inv, node).is_none() {
            return String::new();
        }
        let tool = nftables::TOOL;
        format!("if [ -x {tool} ]; then {tool} status; else echo '@firewall absent'; fi\n")
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        let Some(fw) = on(inv, node) else {
            return Vec::new();
        };
        let Some(line) = seen
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("@firewall "))
        else {
            return Vec::new();
        };
        let (state, when) = line.split_once(' ').unwrap_or((line, ""));
        let open: Vec<String> = plan::rules(inv, fw)
            .iter()
            .map(|r| match r.restricted() {
                false => r.label(),
                true => format!("{} from {}", r.label(), r.sources()),
            })
            .collect();
        let (ok, detail) = match state {
            "ok" => (
                true,
                format!(
                    "in effect: inbound dropped except SSH and {}",
                    if open.is_empty() {
                        "nothing else".to_string()
                    } else {
                        open.join(", ")
                    }
                ),
            ),
            "pending" => (
                false,
                "a change awaits confirmation (a deploy was cut short); the host reverts it by itself, then deploy again".to_string(),
            ),
            "reverted" => (
                false,
                format!(
                    "the last change was reverted at {when}: a new SSH connection failed after it; fix what it blocked and deploy again"
                ),
            ),
            "changed" => (
                false,
                "the rules in effect are not the deployed ones (flushed or changed by hand); deploy puts them back".to_string(),
            ),
            _ => (false, "not deployed; run deploy".to_string()),
        };
        vec![Check::new(node, "firewall", ok, detail)]
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(nftables::NFTABLES);
    r.all.push(&System);
    r.tables.push(&System);
    r.status.push(&System);
}

/// The items comma-separated, or `-` for none (a table cell).
fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}
