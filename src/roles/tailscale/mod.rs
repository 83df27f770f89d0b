//! Tailscale: the tailnet's ACL policy (tag owners, groups, rules in terms of tags and
//! ports) generated from the inventory's `tailnet` section and the nodes'
//! `tailscale_tags`, checked here (`policy.rs`) and printed with `show --tailscale-policy`;
//! pushed through Tailscale's API by `deploy` (`api.rs`).

pub mod api;
mod join;
mod policy;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::contract::Check;
use crate::contract::{
    self, ConvergeOutside, Ctx, Output, Outside, Prepare, PrepareMode, Prepared, Status,
    StatusInput, Systems, Table,
};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::templates::TemplateError;

pub use policy::hujson;

/// The `tailnet` section.
#[derive(Debug, Clone, Default)]
pub struct Tailnet {
    /// The tailnet's name in API paths; `-` is the API key's own tailnet.
    pub name: String,
    /// `group:NAME` → members (e-mail addresses).
    pub groups: BTreeMap<String, Vec<String>>,
    /// `tag:NAME` → who may apply it.
    pub tag_owners: BTreeMap<String, Vec<String>>,
    pub acls: Vec<Acl>,
}

/// One rule of `acls`: `src` may reach `dst` on `ports`.
#[derive(Debug, Clone)]
pub struct Acl {
    /// Its JSON path.
    pub path: String,
    pub src: Vec<String>,
    pub dst: Vec<String>,
    /// `*`, `443`, `8000-8100`.
    pub ports: Vec<String>,
    /// Written above the rule as a comment.
    pub why: Option<String>,
}

#[derive(Debug, Default)]
struct Section {
    tailnet: Option<Tailnet>,
}

/// The inventory's tailnet, if it has one.
pub fn of(inv: &Inventory) -> Option<&Tailnet> {
    inv.section::<Section>().tailnet.as_ref()
}

const KEYS: &[&str] = &["name", "groups", "tag_owners", "acls"];
const ACL_KEYS: &[&str] = &["src", "dst", "ports", "why"];

fn tailnet(c: &mut Collector, v: &Value) -> Option<Tailnet> {
    let f = Fields::new(c, "$.tailnet", v, KEYS)?;
    let name = f.opt_str(c, "name").unwrap_or_else(|| "-".into());
    let name_ok = name == "-"
        || (!name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)));
    if !name_ok {
        c.push(
            f.path_of("name"),
            format!("{name:?} is not a tailnet name; expected e.g. \"example.com\", or \"-\" for the API key's tailnet"),
        );
    }
    Some(Tailnet {
        name,
        groups: string_lists(c, &f, "groups"),
        tag_owners: string_lists(c, &f, "tag_owners"),
        acls: f.objects(c, "acls", acl),
    })
}

/// An object whose values are lists of strings, e.g. `{"tag:farm": ["autogroup:admin"]}`.
fn string_lists(c: &mut Collector, f: &Fields, key: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(v) = f.get(key) else {
        return out;
    };
    let Value::Object(map) = v else {
        c.push(
            f.path_of(key),
            format!(
                "expected an object of lists like {{\"tag:farm\": [\"autogroup:admin\"]}}, found {}",
                crate::inventory::kind(v)
            ),
        );
        return out;
    };
    for (k, list) in map {
        let path = format!("{}[{k:?}]", f.path_of(key));
        match list.as_array().map(|a| {
            a.iter()
                .map(|s| s.as_str().map(String::from))
                .collect::<Option<Vec<String>>>()
        }) {
            Some(Some(items)) => {
                out.insert(k.clone(), items);
            }
            _ => c.push(path, "expected an array of strings"),
        }
    }
    out
}

fn acl(c: &mut Collector, path: &str, v: &Value) -> Option<Acl> {
    let f = Fields::new(c, path, v, ACL_KEYS)?;
    let strings = |c: &mut Collector, key: &str, example: &str| -> Vec<String> {
        let out: Vec<String> = f.list(
            c,
            key,
            "strings",
            &format!("expected a string like {example}"),
            |s| Some(s.to_string()),
        );
        if out.is_empty() && !matches!(f.get(key), Some(Value::Array(a)) if !a.is_empty()) {
            c.push(
                f.path_of(key),
                format!("required {key} is missing or empty; expected e.g. [{example}]"),
            );
        }
        out
    };
    let src = strings(c, "src", "\"tag:mobile\"");
    let dst = strings(c, "dst", "\"tag:farm\"");
    let ports = match f.get("ports") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|p| match p {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => {
            c.push(
                f.path_of("ports"),
                "required ports are missing or empty; expected e.g. [8080, 8081], [\"8000-8100\"] or [\"*\"]",
            );
            Vec::new()
        }
    };
    Some(Acl {
        path: path.to_string(),
        src,
        dst,
        ports,
        why: f.one_line(c, "why"),
    })
}

/// The Tailscale role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "tailscale"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["tailnet"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let tailnet = top.get("tailnet").and_then(|v| tailnet(c, v));
        into.insert(Section { tailnet });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, _claims: &mut Claims) {
        policy::validate(inv, of(inv), c);
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        of(inv).map(|t| format!("tailnet policy with {} rule(s)", t.acls.len()))
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        let key = ctx
            .prepared
            .get::<join::Joins>()
            .and_then(|j| j.keys.get(&ctx.node.name));
        if let Some(key) = key {
            out.resources
                .push(join::resource(&ctx.node.tailscale_tags, key));
        }
        Ok(())
    }
}

impl Table for System {
    fn table(&self, inv: &Inventory) -> Option<(&'static str, String)> {
        of(inv).map(|t| ("tailscale-policy", hujson(inv, t)))
    }
}

impl Prepare for System {
    fn prepare_script(&self, inv: &Inventory, node: &str, _mode: PrepareMode) -> Option<String> {
        join::script(inv, node)
    }

    fn prepare_read(
        &self,
        inv: &Inventory,
        outputs: &BTreeMap<String, Prepared>,
        into: &mut Sections,
    ) -> Vec<String> {
        let (joins, problems) = join::read(inv, outputs);
        into.insert(joins);
        problems
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        join::script(inv, node).unwrap_or_default()
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        let Some(n) = inv.node(node).filter(|n| !n.tailscale_tags.is_empty()) else {
            return Vec::new();
        };
        let tags = n.tailscale_tags.join(",");
        let (ok, detail) = match join::state_of(seen.stdout) {
            Some("Running") => (true, format!("in the tailnet, advertising {tags}")),
            Some("absent") => (false, "tailscale is not installed".to_string()),
            Some(state) => (
                false,
                format!(
                    "not in the tailnet (tailscaled: {state}); deploy with TS_API_KEY set joins it"
                ),
            ),
            None => (false, "no answer from tailscale".to_string()),
        };
        vec![Check::new(node, "tailscale", ok, detail)]
    }
}

impl ConvergeOutside for System {
    fn converge_outside(&self, inv: &Inventory, dry_run: bool) -> anyhow::Result<Outside> {
        let Some(t) = of(inv) else {
            return Ok(Outside::default());
        };
        push_policy(inv, t, dry_run)
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.all.push(&System);
    r.tables.push(&System);
    r.prepare.push(&System);
    r.status.push(&System);
    r.outside.push(&System);
}

/// Compares the tailnet's live policy with the inventory's; validates, shows the diff and
/// (unless `dry_run`) pushes it, guarded by the ETag it read.
fn push_policy(inv: &Inventory, t: &Tailnet, dry_run: bool) -> anyhow::Result<Outside> {
    use anyhow::Context as _;
    let mut out = Outside::default();
    let Some(api) = api::Api::from_env(&t.name)? else {
        out.lines.push(
            "tailnet policy: not pushed (TS_API_KEY is not set; `show --tailscale-policy` prints it)"
                .into(),
        );
        return Ok(out);
    };
    let context = "tailnet policy (nothing changed on any host)";
    let desired = hujson(inv, t);
    let (live, etag) = api.policy().context(context)?;
    if live == desired {
        out.lines.push("tailnet policy: no changes".into());
        return Ok(out);
    }
    api.validate(&desired).context(context)?;
    out.changes = true;
    out.lines
        .push("tailnet policy: changes (- live, + inventory)".into());
    let diff = similar::TextDiff::from_lines(live.as_str(), desired.as_str());
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => continue,
        };
        out.lines.push(format!(
            "  {sign} {}",
            change.value().trim_end_matches('\n')
        ));
    }
    if dry_run {
        out.lines
            .push("tailnet policy: not pushed (dry run)".into());
    } else {
        api.push(&desired, &etag).context(context)?;
        out.lines.push("tailnet policy: pushed".into());
    }
    Ok(out)
}
