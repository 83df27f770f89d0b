//! `vds-proxy logs`: which units of a node to read, the script that reads their journal
//! (`scripts/logs.sh`), and what it printed. Following is reading again after the cursor
//! the last read ended at, so no process is left on a node when the reader stops.

use crate::plan::HostPlan;
use crate::resources::{Kind, unit};
use crate::shell::call;

/// The shell functions the read script calls.
pub const LIBRARY: &str = include_str!("scripts/logs.sh");

/// The units of `host` vds-proxy manages (running units, and the services of its unit
/// files, e.g. one a timer starts), in plan order; when `service` is given, only those
/// that belong to it (as `remove --service` selects).
pub fn units(host: &HostPlan, service: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = host.units.iter().map(|u| u.name.clone()).collect();
    for r in host.resources.iter().filter(|r| r.kind == Kind::UNIT) {
        let Some(name) = unit::file_name(&r.path) else {
            continue;
        };
        if !name.contains("@.") && !out.iter().any(|u| u == name) {
            out.push(name.to_string());
        }
    }
    if let Some(s) = service {
        out.retain(|u| {
            host.resources
                .iter()
                .any(|r| r.service.as_deref() == Some(s) && unit::serves(&r.path, u))
        });
    }
    out
}

/// What `--since` may say: journalctl's times ("1 hour ago", "2026-12-04 10:00:00",
/// "yesterday", "-1h"), nothing else.
pub fn since_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " :-+.@".contains(c))
}

/// The script that reads `units` after `cursor` (or the last `lines`, from `since`).
pub fn read_script(cursor: &str, since: Option<&str>, lines: u32, units: &[String]) -> String {
    let mut args = vec![
        cursor.to_string(),
        since.unwrap_or_default().to_string(),
        lines.to_string(),
    ];
    args.extend(units.iter().cloned());
    format!("{LIBRARY}{}", call("logs_read", args))
}

/// The journal lines a read printed, and the cursor to read after next (the old one when
/// nothing new came).
pub fn parse(stdout: &str, cursor: &str) -> (Vec<String>, String) {
    let mut next = cursor.to_string();
    let mut lines = Vec::new();
    for l in stdout.lines() {
        match l.strip_prefix("@cursor ") {
            Some(c) => next = c.to_string(),
            None if l.is_empty() => {}
            None => lines.push(l.to_string()),
        }
    }
    (lines, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_gives_its_lines_and_the_cursor_to_go_on_from() {
        let (lines, c) = parse("a\nb\n@cursor s=1;i=2\n", "old");
        assert_eq!(
            (lines, c.as_str()),
            (vec!["a".into(), "b".into()], "s=1;i=2")
        );
        let (lines, c) = parse("\n", "old");
        assert!(lines.is_empty());
        assert_eq!(c, "old", "no new line: the same cursor");
    }

    #[test]
    fn since_takes_journal_times_and_nothing_that_could_add_an_option() {
        for ok in [
            "1 hour ago",
            "2026-12-04 10:00:00",
            "yesterday",
            "-1h",
            "@1796426000",
        ] {
            assert!(since_ok(ok), "{ok}");
        }
        for bad in ["", "1h; reboot", "$(id)", "x'y", "a\nb", &"9".repeat(41)] {
            assert!(!since_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_read_script_quotes_every_value() {
        let s = read_script("s=1;i=2", Some("1 hour ago"), 5, &["a b.service".into()]);
        assert!(
            s.ends_with("logs_read 's=1;i=2' '1 hour ago' 5 'a b.service'\n"),
            "{s}"
        );
    }
}
