//! The `wg-quick` config, drop-in and unit of each interface a node has, peers rendered
//! with the public keys read back from the nodes.

use minijinja::context;

use super::keys::PublicKeys;
use super::model::{Topology, WgMember, WgNetwork};
use super::wg_quick as wireguard;
use crate::contract::{Ctx, Output};
use crate::resources::{Part, Resource, dropin, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("wg.conf.j2", include_str!("templates/wg.conf.j2")),
    (
        "wg-dropin.conf.j2",
        include_str!("templates/wg-dropin.conf.j2"),
    ),
];

/// The keys read in the prepare step (none yet: placeholders).
fn keys<'a>(ctx: &'a Ctx) -> &'a PublicKeys {
    static NONE: PublicKeys = PublicKeys(std::collections::BTreeMap::new());
    ctx.prepared.get::<PublicKeys>().unwrap_or(&NONE)
}

/// Adds the interfaces of every network `ctx.node` is a member of.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    for w in super::of(ctx.inv) {
        if let Some(me) = w.member(&ctx.node.name) {
            interface(ctx, w, me, out)?;
        }
    }
    Ok(())
}

fn interface(
    ctx: &Ctx,
    w: &WgNetwork,
    me: &WgMember,
    out: &mut Output,
) -> Result<(), TemplateError> {
    let iface = &w.interface;
    let is_hub = w.is_hub(&me.node);
    let peers: Vec<minijinja::Value> = w
        .peers_of(&me.node)
        .into_iter()
        .map(|p| {
            let allowed = w.allowed_ips(me, p);
            let endpoint = endpoint_of(ctx, w, p);
            context! {
                node => p.node.clone(),
                public_key => keys(ctx).get_or_placeholder(&p.node, iface),
                allowed_ips => allowed,
                keepalive => (endpoint.is_some() && w.keepalive > 0).then_some(w.keepalive),
                endpoint => endpoint,
            }
        })
        .collect();
    let masquerade = is_hub && w.members.iter().any(|m| m.route_all) && w.topology == Topology::Hub;
    let public_key = keys(ctx).get_or_placeholder(&me.node, iface);
    let conf = ctx.templates.render(
        "wg.conf.j2",
        context! {
            node => me.node.clone(),
            iface => iface,
            topology => if w.topology == Topology::Hub { "hub" } else { "mesh" },
            address => me.cidr(),
            port => w.port,
            key_file => wireguard::key_file(iface),
            public_key => public_key.clone(),
            forward => is_hub,
            forward_saved => format!("/run/vds-proxy-{iface}.forward"),
            masquerade => masquerade,
            subnet => w.subnet(),
            peers => peers,
        },
    )?;
    out.resources
        .push(live_check(ctx, w, me, wireguard::config(iface, conf)).in_part(Part::Setup));
    // What only takes effect when the interface comes up (its address, its key, userspace)
    // sits in the unit's drop-in: a change there restarts the tunnel; peer changes only
    // reload it.
    let drop = ctx.templates.render(
        "wg-dropin.conf.j2",
        context! {
            iface => iface,
            address => me.cidr(),
            public_key => public_key,
            userspace => me.userspace,
            key_file => wireguard::key_file(iface),
        },
    )?;
    let u = wireguard::unit(iface);
    out.resources
        .push(dropin::drop_in(&u, "vds-proxy.conf", drop).in_part(Part::Setup));
    let mut spec = unit::running(&u, Vec::new()).in_part(Part::Setup);
    // After the tunnel came up or changed, start the handshakes and wait for them, so that
    // a status right after the deploy sees a working tunnel.
    spec.settle = Some(super::status::settle(w, &me.node));
    out.units.push(spec);
    Ok(())
}

/// With every key known: the interface must run with this node's key and exactly the
/// planned peers (a peer removed by hand, or a key lost, is put back by a reload).
fn live_check(ctx: &Ctx, w: &WgNetwork, me: &WgMember, r: Resource) -> Resource {
    let key = |node: &str| keys(ctx).0.get(&(node.to_string(), w.interface.clone()));
    let Some(own) = key(&me.node) else {
        return r;
    };
    let Some(mut peers) = w
        .peers_of(&me.node)
        .iter()
        .map(|p| key(&p.node).cloned())
        .collect::<Option<Vec<String>>>()
    else {
        return r;
    };
    peers.sort();
    let i = crate::shell::quote(&w.interface);
    r.live_check(format!(
        "[ \"$(wg show {i} public-key)\" = {own} ] && [ \"$(wg show {i} peers | sort | tr '\\n' ' ')\" = {peers} ]",
        own = crate::shell::quote(own),
        peers = crate::shell::quote(&(peers.join(" ") + " ")),
    ))
}

/// Where `node`'s peer `p` is reached: its endpoint, else its node's public IP and the port.
fn endpoint_of(ctx: &Ctx, w: &WgNetwork, p: &WgMember) -> Option<String> {
    p.endpoint.clone().or_else(|| {
        let ip = ctx.inv.node(&p.node)?.public_ip?;
        Some(match ip {
            std::net::IpAddr::V4(a) => format!("{a}:{}", w.port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", w.port),
        })
    })
}
