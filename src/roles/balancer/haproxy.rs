//! HAProxy configuration files, validated with `haproxy -c` before they go live.

use crate::resources::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where Debian's haproxy reads its configuration.
pub const CONFIG: &str = "/etc/haproxy/haproxy.cfg";
/// The unit of Debian's haproxy package; reloads are graceful (master-worker, USR2).
pub const UNIT: &str = "haproxy.service";

/// An HAProxy configuration.
pub const HAPROXY: Kind = Kind::new("haproxy", &HaproxyOps);

/// Behaviour of [`HAPROXY`].
pub struct HaproxyOps;

impl KindOps for HaproxyOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("haproxy -c -q -f {}", quote(staged)))
    }

    /// New servers go to the running HAProxy through its runtime API (see `live.sh`).
    fn live_update(&self, path: &str) -> Option<String> {
        Some(format!(
            "{}haproxy_add_servers \"$old\" {}",
            include_str!("live.sh"),
            quote(path)
        ))
    }
}

/// The haproxy.cfg resource; a change reloads haproxy (or, when it only adds servers, adds
/// them to the running one), never restarts it.
pub fn config(text: String) -> Resource {
    Resource::text(HAPROXY, CONFIG, text, 0o644).on_change(Action::Reload(UNIT.into()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    const OLD: &str = "# Managed by vds-proxy
global
    stats socket SOCK mode 660 level admin expose-fd listeners

defaults
    mode tcp

frontend echo
    bind 0.0.0.0:8500
    default_backend echo

backend echo
    balance roundrobin
    option tcp-check
    tcp-check connect
    server echo-1 127.0.0.1:10000 check inter 2000 fall 3 rise 2
    server echo-2 127.0.0.1:10001 check inter 2000 fall 3 rise 2

listen stats
    bind 127.0.0.1:9101
";
    const THIRD: &str = "    server echo-3 127.0.0.1:10002 check inter 2000 fall 3 rise 2\n";

    /// Runs `script` after live.sh in `dir`, whose `bin` comes first in PATH; stdout and
    /// whether it succeeded.
    fn sh(dir: &Path, script: &str) -> (String, bool) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{}{script}", include_str!("live.sh")))
            .current_dir(dir)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", dir.join("bin").display()),
            )
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.success(),
        )
    }

    /// Writes an executable stand-in at `path`.
    fn stand_in(path: &Path, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, script).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn with_third(text: &str) -> String {
        text.replace("\n\nlisten stats", &format!("\n{THIRD}\nlisten stats"))
    }

    /// Only servers added to a backend are taken live; any other difference, a server gone
    /// or changed, nothing added, or transparent backends are left to a reload.
    #[test]
    fn only_added_servers_are_taken_live() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let case = |old: &str, new: &str| {
            std::fs::write(d.join("old"), old).unwrap();
            std::fs::write(d.join("new"), new).unwrap();
            sh(d, "haproxy_added old new")
        };
        let (out, ok) = case(OLD, &with_third(OLD));
        assert!(ok);
        assert_eq!(
            out,
            "echo server echo-3 127.0.0.1:10002 check inter 2000 fall 3 rise 2\n"
        );
        let transparent = OLD.replace(
            "    tcp-check connect\n",
            "    tcp-check connect\n    source 0.0.0.0 usesrc clientip\n",
        );
        let without_second = OLD.replace(
            "    server echo-2 127.0.0.1:10001 check inter 2000 fall 3 rise 2\n",
            "",
        );
        let refused = [
            (
                "another line",
                OLD.to_string(),
                with_third(OLD).replace("roundrobin", "leastconn"),
            ),
            ("a server gone", OLD.to_string(), without_second),
            (
                "a server changed",
                OLD.to_string(),
                with_third(OLD).replace("10001", "10009"),
            ),
            ("nothing added", OLD.to_string(), OLD.to_string()),
            ("transparent", transparent.clone(), with_third(&transparent)),
            (
                "a \";\" (it would end the runtime API's command)",
                OLD.to_string(),
                with_third(OLD).replace("rise 2\n\nlisten", "rise 2; show info\n\nlisten"),
            ),
        ];
        for (what, old, new) in refused {
            assert_eq!(case(&old, &new), (String::new(), false), "{what}");
        }
    }

    /// The added servers go to the runtime API in one connection once they listen: each
    /// added, enabled, its health check enabled and at full health (as a reload starts it);
    /// any other answer fails (the caller reloads).
    #[test]
    fn added_servers_go_to_the_runtime_api() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let sock = d.join("admin.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let old = OLD.replace("SOCK", &sock.display().to_string());
        std::fs::write(d.join("old"), &old).unwrap();
        std::fs::write(d.join("new"), with_third(&old)).unwrap();
        std::fs::create_dir(d.join("bin")).unwrap();
        let socat = d.join("bin/socat");
        let fake = |answer: &str| {
            let script = format!("#!/bin/sh\necho \"$*\" > args\ncat > sent\nprintf '{answer}'\n");
            stand_in(&socat, &script);
        };
        // The new replica listens (its port in `ss -Htln`'s list).
        stand_in(
            &d.join("bin/ss"),
            "#!/bin/sh\necho 'LISTEN 0 5 127.0.0.1:10002 0.0.0.0:*'\n",
        );
        fake("New server registered.\\n\\n\\n\\n\\n");
        let (out, ok) = sh(d, "haproxy_add_servers old new");
        assert!(ok, "{out}");
        assert_eq!(
            std::fs::read_to_string(d.join("sent")).unwrap(),
            concat!(
                "add server echo/echo-3 127.0.0.1:10002 check inter 2000 fall 3 rise 2; ",
                "enable server echo/echo-3; enable health echo/echo-3; ",
                "set server echo/echo-3 health up\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(d.join("args")).unwrap(),
            format!("-t 5 stdio UNIX-CONNECT:{}\n", sock.display())
        );
        fake(
            "Backend must use a dynamic load balancing to support dynamic servers.\\n\\nNo such server.\\n\\nNo such server.\\n\\n",
        );
        let (out, ok) = sh(d, "haproxy_add_servers old new");
        assert!(!ok);
        // One line: the first refusal (the commands after it fail for want of the server).
        assert_eq!(
            out,
            "HAProxy's runtime API refused the new servers: Backend must use a dynamic load balancing to support dynamic servers.\n"
        );
    }
}
