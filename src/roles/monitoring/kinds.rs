//! The monitoring configs, each checked by its own tool before it goes live:
//! `promtool check config` and `promtool check rules` for Prometheus, `amtool
//! check-config` for Alertmanager, `--config.check` for the blackbox exporter.

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// Prometheus' main config. Its rule files are checked on their own (`--syntax-only`: the
/// staged copy must not be compared with the rules live before this apply).
pub const PROMETHEUS: Kind = Kind::new("prometheus", &PrometheusOps);
/// A Prometheus rules file.
pub const RULES: Kind = Kind::new("prometheus-rules", &RulesOps);
/// Alertmanager's config.
pub const ALERTMANAGER: Kind = Kind::new("alertmanager", &AlertmanagerOps);
/// The blackbox exporter's config.
pub const BLACKBOX: Kind = Kind::new("blackbox", &BlackboxOps);

/// The kinds this system registers.
pub const ALL: [Kind; 4] = [PROMETHEUS, RULES, ALERTMANAGER, BLACKBOX];

/// Behaviour of [`PROMETHEUS`].
pub struct PrometheusOps;
/// Behaviour of [`RULES`].
pub struct RulesOps;
/// Behaviour of [`ALERTMANAGER`].
pub struct AlertmanagerOps;
/// Behaviour of [`BLACKBOX`].
pub struct BlackboxOps;

impl KindOps for PrometheusOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!(
            "promtool check config --syntax-only {} >/dev/null",
            quote(staged)
        ))
    }
}

impl KindOps for RulesOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("promtool check rules {} >/dev/null", quote(staged)))
    }
}

impl KindOps for AlertmanagerOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("amtool check-config {} >/dev/null", quote(staged)))
    }
}

impl KindOps for BlackboxOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!(
            "prometheus-blackbox-exporter --config.check --config.file={}",
            quote(staged)
        ))
    }
}
