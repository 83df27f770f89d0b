//! What fires now, read from Alertmanager on the monitoring node (with `amtool`, over the
//! SSH connection: Alertmanager listens on the node's loopback only): a `status` row per
//! firing alert, and `vds-proxy alerts [--format json]`.

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command};
use serde::Serialize;
use serde_json::Value;

use super::{ALERTMANAGER_PORT, of};
use crate::contract::{BadInput, Check, Verb, VerbCtx, table};

/// Prints `@alerts JSON` (the active, unsilenced alerts) or `@alerts-down WHY`.
pub fn script() -> String {
    format!(
        "if out=$(amtool alert query -o json \
         --alertmanager.url=http://127.0.0.1:{ALERTMANAGER_PORT} 2>&1); then \
         printf '@alerts %s\\n' \"$(printf '%s' \"$out\" | tr -d '\\n')\"; \
         else printf '@alerts-down %s\\n' \"$(printf '%s' \"$out\" | tr '\\n' ' ' | cut -c1-300)\"; fi\n"
    )
}

/// One firing alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    pub alert: String,
    /// The node it is about (its `node` label), if any.
    pub node: Option<String>,
    pub severity: Option<String>,
    pub summary: String,
    /// When it started firing (RFC 3339, as Alertmanager says).
    pub since: String,
    /// Every label.
    pub labels: serde_json::Map<String, Value>,
}

/// The firing alerts in what the script printed; `Err` says why there are none to read.
pub fn read(stdout: &str) -> Result<Vec<Firing>, String> {
    if let Some(why) = stdout.lines().find_map(|l| l.strip_prefix("@alerts-down ")) {
        return Err(format!(
            "Alertmanager does not answer on 127.0.0.1:{ALERTMANAGER_PORT}: {}",
            why.trim()
        ));
    }
    let Some(json) = stdout.lines().find_map(|l| l.strip_prefix("@alerts ")) else {
        return Err("no answer from the status script".into());
    };
    let v: Value = serde_json::from_str(json)
        .map_err(|e| format!("Alertmanager's answer is not JSON: {e}"))?;
    let items = v.as_array().ok_or("Alertmanager's answer is not a list")?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut out: Vec<Firing> = items
        .iter()
        .map(|a| {
            let labels = a["labels"].as_object().cloned().unwrap_or_default();
            Firing {
                alert: text(&a["labels"]["alertname"]).unwrap_or_else(|| "?".into()),
                node: text(&a["labels"]["node"]),
                severity: text(&a["labels"]["severity"]),
                summary: text(&a["annotations"]["summary"]).unwrap_or_default(),
                since: text(&a["startsAt"]).unwrap_or_default(),
                labels,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.alert, &a.node, &a.since).cmp(&(&b.alert, &b.node, &b.since)));
    Ok(out)
}

/// A row per firing alert (or one saying none fire), reported for the monitoring node.
pub fn status_checks(node: &str, stdout: &str) -> Vec<Check> {
    match read(stdout) {
        Err(why) => vec![Check::new(node, "alertmanager", false, why)],
        Ok(firing) if firing.is_empty() => {
            vec![Check::new(node, "alerts", true, "none firing")]
        }
        Ok(firing) => firing
            .iter()
            .map(|f| {
                Check::new(
                    node,
                    format!("alert {}", f.alert),
                    false,
                    format!("{} (since {})", f.summary, f.since),
                )
            })
            .collect(),
    }
}

/// The `alerts` verb.
pub fn verb() -> Verb {
    Verb { command, run }
}

fn command() -> Command {
    Command::new("alerts")
        .about("The alerts firing now, from Alertmanager on the monitoring node")
        .arg(
            Arg::new("format")
                .long("format")
                .value_name("FORMAT")
                .value_parser(["table", "json"])
                .default_value("table")
                .help("table for people, json for scripts"),
        )
}

fn run(ctx: &VerbCtx, args: &ArgMatches) -> Result<i32> {
    let Some(m) = of(ctx.inv) else {
        return Err(BadInput(
            "the inventory has no monitoring section; add \"monitoring\": {\"node\": \"…\"} and deploy".into(),
        )
        .into());
    };
    let out = (ctx.run_on)(&m.node, &script())
        .with_context(|| format!("asking Alertmanager on {}", m.node))?;
    let firing = match read(&out.stdout) {
        Ok(f) => f,
        Err(why) => bail!("{}: {why}; is monitoring deployed there?", m.node),
    };
    if args.get_one::<String>("format").map(String::as_str) == Some("json") {
        println!("{}", serde_json::to_string_pretty(&firing)?);
        return Ok(0);
    }
    if firing.is_empty() {
        println!("no alerts firing");
        return Ok(0);
    }
    let mut rows = vec![["ALERT", "NODE", "SEVERITY", "SINCE", "SUMMARY"].map(String::from)];
    rows.extend(firing.iter().map(|f| {
        [
            f.alert.clone(),
            f.node.clone().unwrap_or_else(|| "-".into()),
            f.severity.clone().unwrap_or_else(|| "-".into()),
            f.since.clone(),
            f.summary.clone(),
        ]
    }));
    print!("{}", table::table(&rows));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_alerts_are_read_from_amtool_json() {
        let json =
            r#"[{"labels":{"alertname":"NodeDown","node":"h2","severity":"critical","job":"node"},
            "annotations":{"summary":"node h2 does not answer the monitoring node"},
            "startsAt":"2026-12-04T23:00:00Z","status":{"state":"active"}}]"#
                .replace('\n', "");
        let f = read(&format!("noise\n@alerts {json}\n")).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].alert, "NodeDown");
        assert_eq!(f[0].node.as_deref(), Some("h2"));
        let rows = status_checks("h1", &format!("@alerts {json}\n"));
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].ok && rows[0].check == "alert NodeDown", "{rows:?}");
        assert!(status_checks("h1", "@alerts []\n")[0].ok);
    }

    #[test]
    fn an_alertmanager_that_does_not_answer_is_a_failed_row() {
        let rows = status_checks("h1", "@alerts-down connection refused\n");
        assert!(!rows[0].ok && rows[0].detail.contains("connection refused"));
        assert!(!status_checks("h1", "")[0].ok);
    }
}
