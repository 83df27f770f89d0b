//! Compose files (Podman Compose), checked before they go live with the YAML parser
//! podman-compose itself reads them with: the file must parse and every service must name
//! an image. (podman-compose 1.0 has no `config` command, and its `--dry-run` creates the
//! project's volumes and networks, so it cannot serve as the validator.)

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// A compose file (Podman Compose).
pub const COMPOSE: Kind = Kind::new("compose", &ComposeOps);

/// Behaviour of [`COMPOSE`].
pub struct ComposeOps;

/// Exits non-zero, saying why, unless the file in `sys.argv[1]` is a compose file with
/// services that each name an image.
pub const CHECK: &str = r#"import sys, yaml
try:
    d = yaml.safe_load(open(sys.argv[1]))
except yaml.YAMLError as e:
    sys.exit("not YAML: %s" % e)
s = d.get("services") if isinstance(d, dict) else None
if not isinstance(s, dict) or not s:
    sys.exit("no services")
for n, v in s.items():
    if not isinstance(v, dict) or not v.get("image"):
        sys.exit("service %s names no image" % n)
"#;

impl KindOps for ComposeOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("python3 -c {} {}", quote(CHECK), quote(staged)))
    }
}
