//! The nftables rules, the boot unit and the tool of a node with a firewall.

use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Serialize;

use super::nftables;
use super::{Firewall, on};
use crate::contract::{Ctx, Output};
use crate::inventory::Inventory;
use crate::resources::{Action, Kind, Part, Resource, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("firewall.nft.j2", include_str!("templates/firewall.nft.j2")),
    (
        "firewall.service.j2",
        include_str!("templates/firewall.service.j2"),
    ),
];

/// The unit that loads the confirmed rules at boot.
pub const UNIT: &str = "vds-firewall.service";
/// The last rules a deploy confirmed over a new SSH connection.
const CONFIRMED: &str = "/var/lib/vds-proxy/firewall/confirmed.nft";
/// When the last unconfirmed change was reverted.
const REVERTED: &str = "/var/lib/vds-proxy/firewall/reverted";
/// Run-time state: the rules awaiting confirmation, what was loaded.
const STATE: &str = "/run/vds-proxy/firewall";
/// The transient timer (and service) that reverts an unconfirmed change.
const TIMER: &str = "vds-firewall-revert";

/// The tool as installed: its settings, then the script.
pub fn tool_text() -> String {
    format!(
        "#!/bin/sh\n# Installed by vds-proxy.\nRULES={}\nCONFIRMED={CONFIRMED}\nREVERTED={REVERTED}\nSTATE={STATE}\nTABLE='{}'\nTIMER={TIMER}\nSELF={}\n{}",
        nftables::RULES,
        nftables::TABLE,
        nftables::TOOL,
        include_str!("firewall.sh")
    )
}

/// One accept rule, as the template reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub protocol: &'static str,
    /// `80` or `60000-60100`.
    pub ports: String,
    /// Source networks by family; both empty: any source.
    pub from4: Vec<String>,
    pub from6: Vec<String>,
    /// What asked for it (a JSON path), for the rule's comment.
    pub why: String,
}

impl Rule {
    /// Only some sources may connect.
    pub fn restricted(&self) -> bool {
        !self.from4.is_empty() || !self.from6.is_empty()
    }

    /// `80/tcp`, as tables and status name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.ports, self.protocol)
    }

    /// The sources it accepts, space-separated (empty: any).
    pub fn sources(&self) -> String {
        [&self.from4[..], &self.from6[..]].concat().join(" ")
    }
}

/// A JSON path as an nftables comment: quote-free and short.
fn comment(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_ascii_alphanumeric() || " $._[]()-:,/".contains(*c))
        .take(120)
        .collect()
}

/// The accept rules of `fw` besides SSH: every port the node's systems listen on, then the
/// allow list.
pub fn rules(inv: &Inventory, fw: &Firewall) -> Vec<Rule> {
    let ssh = inv.node(&fw.node).map(|n| n.ssh_port);
    let mut out: Vec<Rule> = inv
        .claimed_on(&fw.node)
        .into_iter()
        .filter(|c| !c.local && (c.udp || Some(c.port) != ssh))
        .map(|c| {
            let (from6, from4) = c.from.iter().cloned().partition(|n| n.contains(':'));
            Rule {
                protocol: if c.udp { "udp" } else { "tcp" },
                ports: c.port.to_string(),
                from4,
                from6,
                why: comment(&c.by),
            }
        })
        .collect();
    for a in &fw.allow {
        let (from6, from4): (Vec<String>, Vec<String>) =
            a.from.iter().cloned().partition(|n| n.contains(':'));
        out.push(Rule {
            protocol: if a.udp { "udp" } else { "tcp" },
            ports: if a.ports.0 == a.ports.1 {
                a.ports.0.to_string()
            } else {
                format!("{}-{}", a.ports.0, a.ports.1)
            },
            from4,
            from6,
            why: comment(&a.path),
        });
    }
    out
}

/// Adds the firewall of `ctx.node`, if it has one.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let Some(fw) = on(ctx.inv, &ctx.node.name) else {
        return Ok(());
    };
    let t = ctx.templates;
    let vars = context! {
        node => Value::from(Serde(ctx.node)),
        table => nftables::TABLE,
        tool => nftables::TOOL,
        ssh_port => ctx.node.ssh_port,
        trusted_interfaces => fw.trusted_interfaces.clone(),
        rules => Value::from(Serde(rules(ctx.inv, fw))),
    };
    out.resources
        .push(Resource::text(Kind::FILE, nftables::TOOL, tool_text(), 0o755).in_part(Part::Setup));
    out.resources.push(
        unit::unit_file(UNIT, t.render("firewall.service.j2", vars.clone())?, &[])
            .in_part(Part::Setup),
    );
    let tool = nftables::TOOL;
    let rules = nftables::rules(t.render("firewall.nft.j2", vars)?);
    // The confirmation names the rules this deploy applied: a deploy racing on the host
    // cannot confirm another's rules (nor its own after another's replaced them).
    let confirm = format!("{tool} confirm {}", rules.sha256);
    out.resources.push(
        rules
            .in_part(Part::Setup)
            .on_change(Action::Run {
                name: "firewall rules".into(),
                command: format!("{tool} apply {}", fw.revert_after),
            })
            .live_check(format!("{tool} check"))
            .confirm(confirm, fw.revert_after),
    );
    out.units
        .push(unit::running(UNIT, Vec::new()).in_part(Part::Setup));
    Ok(())
}
