//! TPROXY for transparent HAProxy balancers: sysctls, a dedicated mangle chain, and the
//! policy routing that hands marked packets to local sockets, all owned by one oneshot unit
//! so they come back after a reboot and go away with it. No inventory key of its own: it
//! follows the `transparent` flag of the balancers.

pub mod iptables;

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::balancer::balanced_on;
use crate::contract::{self, Ctx, Output, Systems};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::resources::{Action, Kind, Part, Resource, unit};
use crate::templates::TemplateError;
use iptables as firewall;

/// The templates this role renders.
const TEMPLATES: &[(&str, &str)] = &[
    ("tproxy.rules.j2", include_str!("templates/tproxy.rules.j2")),
    (
        "tproxy-backends.rules.j2",
        include_str!("templates/tproxy-backends.rules.j2"),
    ),
    (
        "tproxy.sysctl.j2",
        include_str!("templates/tproxy.sysctl.j2"),
    ),
    (
        "tproxy.service.j2",
        include_str!("templates/tproxy.service.j2"),
    ),
];

/// The TPROXY role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "tproxy"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn parse(&self, _top: &Fields, _c: &mut Collector, _into: &mut Sections) {}

    fn validate(&self, _inv: &Inventory, _c: &mut Collector, _claims: &mut Claims) {}

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, _inv: &Inventory) -> Option<String> {
        None
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan(ctx, out)
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(iptables::IPTABLES);
    r.all.push(&System);
}

/// The unit that loads and removes the rules.
pub const UNIT: &str = "vds-tproxy.service";
/// The rules file (iptables-restore input).
pub const RULES: &str = "/etc/vds-proxy/tproxy.rules";
/// The rules marking replies of local backends (part of the backends: scaling changes it).
pub const BACKEND_RULES: &str = "/etc/vds-proxy/tproxy-backends.rules";
/// The sysctl settings the unit applies.
pub const SYSCTL: &str = "/etc/sysctl.d/60-vds-proxy-tproxy.conf";
/// Where the unit keeps the kernel settings as they were, to restore them on stop.
pub const SYSCTL_SAVED: &str = "/run/vds-proxy-tproxy.sysctl";
/// The kernel settings TPROXY needs: forwarding on.
pub const SYSCTLS: &[(&str, &str)] = &[("net.ipv4.ip_forward", "1")];
/// The mangle chain PREROUTING jumps to.
pub const CHAIN: &str = "VDS_TPROXY";
/// The mangle chain OUTPUT jumps to: replies of local backends.
pub const CHAIN_OUT: &str = "VDS_TPROXY_OUT";
/// The firewall mark and routing table.
pub const MARK: &str = "0x1";
pub const TABLE: u32 = 100;

/// Adds the TPROXY resources when a balancer on `ctx.node` is transparent.
fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let transparent: Vec<_> = balanced_on(ctx.inv, &ctx.node.name)
        .filter(|(_, b)| b.transparent)
        .collect();
    if transparent.is_empty() {
        return Ok(());
    }
    let frontend_ports: Vec<u16> = transparent.iter().map(|(_, b)| b.port).collect();
    let backend_ports: Vec<u16> = transparent
        .iter()
        .flat_map(|(s, _)| (1..=s.replicas).map(|n| s.replica_port(n)))
        .collect();
    let vars = context! {
        node => Value::from(Serde(ctx.node)),
        chain => CHAIN,
        chain_out => CHAIN_OUT,
        mark => MARK,
        table => TABLE,
        rules_file => RULES,
        backends_rules_file => BACKEND_RULES,
        sysctl_file => SYSCTL,
        sysctl_saved => SYSCTL_SAVED,
        sysctls => Value::from(Serde(SYSCTLS)),
        frontend_ports => frontend_ports,
        backend_ports => backend_ports,
    };
    let t = ctx.templates;
    out.resources.push(
        unit::unit_file(
            UNIT,
            t.render("tproxy.service.j2", vars.clone())?,
            &[UNIT.into()],
        )
        .in_part(Part::Setup),
    );
    out.resources.push(
        Resource::text(
            Kind::FILE,
            SYSCTL,
            t.render("tproxy.sysctl.j2", vars.clone())?,
            0o644,
        )
        .on_change(Action::Reload(UNIT.into()))
        .in_part(Part::Setup),
    );
    out.resources.push(
        firewall::rules(RULES, t.render("tproxy.rules.j2", vars.clone())?, UNIT)
            .in_part(Part::Setup)
            .live_check(format!(
                "iptables -t mangle -C PREROUTING -j {CHAIN} && ip rule show fwmark {MARK}/{MARK} lookup {TABLE} | \
                grep -q . && ip route show table {TABLE} | grep -q '^local default'"
            )),
    );
    out.resources.push(
        firewall::rules(
            BACKEND_RULES,
            t.render("tproxy-backends.rules.j2", vars)?,
            UNIT,
        )
        .in_part(Part::Backends)
        .live_check(format!("iptables -t mangle -C OUTPUT -j {CHAIN_OUT}")),
    );
    out.units
        .push(unit::running(UNIT, Vec::new()).in_part(Part::Setup));
    Ok(())
}
