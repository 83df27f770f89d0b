//! The tailscale system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// Strips HuJSON's comments and trailing commas: what Tailscale does before reading it.
fn standard_json(hujson: &str) -> serde_json::Value {
    let no_comments: String = hujson
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let chars: Vec<char> = no_comments.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(*c);
    }
    serde_json::from_str(&out).expect("the policy is HuJSON")
}

/// The seed's farm policy (tag:farm and tag:mobile owned by the admin; mobile reaches the
/// farms on 8080 and 8081, farms reach mobile on every port), written in inventory terms,
/// comes out as the seed's policy file.
#[test]
fn the_seed_farm_policy_is_generated_from_the_inventory() {
    let text = r#"{
      "nodes": [{"name": "farm-a", "tailscale_ip": "100.64.0.21", "tailscale_tags": ["tag:farm"]}],
      "tailnet": {
        "tag_owners": {"tag:farm": ["admin@kub1063.com"], "tag:mobile": ["admin@kub1063.com"]},
        "acls": [
          {"src": ["tag:mobile"], "dst": ["tag:farm"], "ports": [8080, 8081]},
          {"src": ["tag:farm"], "dst": ["tag:mobile"], "ports": ["*"]}
        ]
      }
    }"#;
    let inv =
        inventory::from_str(Path::new("seed004.json"), text, &roles::all().sections()).unwrap();
    let (_, policy) = roles::all()
        .tables
        .iter()
        .find_map(|r| r.table(&inv).filter(|(n, _)| *n == "tailscale-policy"))
        .unwrap();
    let seed = serde_json::json!({
        "tagOwners": {
            "tag:farm": ["admin@kub1063.com"],
            "tag:mobile": ["admin@kub1063.com"]
        },
        "acls": [
            {"action": "accept", "src": ["tag:mobile"], "dst": ["tag:farm:8080,8081"]},
            {"action": "accept", "src": ["tag:farm"], "dst": ["tag:mobile:*"]}
        ]
    });
    assert_eq!(standard_json(&policy), seed);
}

#[test]
fn the_farms_example_policy_is_hujson() {
    let (inv, _) = plan_of("examples/farms.json");
    let policy =
        vds_proxy::roles::tailscale::hujson(&inv, vds_proxy::roles::tailscale::of(&inv).unwrap());
    let v = standard_json(&policy);
    assert_eq!(v["acls"].as_array().unwrap().len(), 4);
    assert_eq!(v["tagOwners"]["tag:farm"][1], "tag:server");
}
