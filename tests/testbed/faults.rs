//! Deploys cut off midway, for real (issue: "a deploy cut off midway"): deploys between two
//! versions of h1 (two routes whose ports, relay configuration and socat unit all change)
//! are cut at random moments, and each host is then judged on the host itself — the files
//! and manifest (a dry run of either version finds nothing to do), what listens and answers,
//! `status` — first without another deploy, then after one. The moments come from a seed
//! printed at the start; `VDS_FAULT_SEED=N` replays a run.
//!
//! Faults: vds-proxy killed (-9); its ssh processes killed; the apply killed on the host (as
//! the OOM killer would); the apply and its watcher killed (a power cut, without the reboot:
//! nothing is left on the host to finish it); the host's link down for 2-8 s; /etc made
//! read-only mid-apply; the host rebooted mid-apply (`reboot -f`: no shutdown, the test
//! host boots again on the same disk); h1's disk full but for 0-256 KiB (ENOSPC at a random
//! step: its disk is a filesystem of its own, see setup.sh), freed afterwards; a second
//! deploy started while the first runs (the other version).

use super::*;

/// Version A and B of h1: every file and unit of the two routes differs between them.
fn version(b: bool) -> String {
    let (web, api) = if b { (8453, 8454) } else { (8443, 8444) };
    format!(
        r#"[
  {{"port": {web}, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}},
  {{"port": {api}, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "api", "forwarder": "socat"}}
]"#
    )
}

fn ports(b: bool) -> [u16; 2] {
    if b { [8453, 8454] } else { [8443, 8444] }
}

/// A small generator (xorshift64*), seeded and printed so that a run can be replayed.
struct Moments(u64);

impl Moments {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A moment in `0..max`.
    fn millis(&mut self, max: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.next() % max.max(1))
    }
}

struct Campaign {
    _env: Env,
    /// Inventory files of version A and B.
    files: [PathBuf; 2],
}

impl Campaign {
    /// Three test hosts, and the inventories of version A and B.
    fn new(name: &str) -> Campaign {
        let env = Env::new(name);
        let files = [false, true].map(|b| {
            let f = env.dir.join(format!("nodes-{}.json", self::name(b)));
            std::fs::write(
                &f,
                format!(
                    r#"{{"nodes": [{}], "routes": {}}}"#,
                    nodes_json(3),
                    version(b)
                ),
            )
            .unwrap();
            f
        });
        Campaign { _env: env, files }
    }

    /// vds-proxy with the inventory of version `b`.
    fn command(&self, b: bool, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vds-proxy"));
        c.arg("-i").arg(&self.files[b as usize]).args(args);
        c
    }

    fn vds(&self, b: bool, args: &[&str]) -> Output {
        self.command(b, args).output().unwrap()
    }

    fn spawn(&self, b: bool) -> std::process::Child {
        self.command(b, &["deploy", "--node", "h1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Which version h1 is entirely, judged on the host: a dry run of exactly one version
    /// finds nothing to do, its ports answer through the echo service and the other's are
    /// closed, and `status` of it passes. `None` (with what was seen) when it is neither.
    fn judge(&self) -> Result<bool, String> {
        let same: Vec<bool> = [false, true]
            .into_iter()
            .filter(|b| {
                let out = self.vds(
                    *b,
                    &["deploy", "--dry-run", "--detailed-exitcode", "--node", "h1"],
                );
                out.status.code() == Some(0)
            })
            .collect();
        let [b] = same[..] else {
            return Err(format!("the files match {} version(s)", same.len()));
        };
        for p in ports(b) {
            let got = echo(&ip(1), p);
            if got != "ping through vds-proxy\n" {
                return Err(format!("version {} but port {p} answered {got:?}", name(b)));
            }
        }
        for p in ports(!b) {
            if std::net::TcpStream::connect((ip(1).as_str(), p)).is_ok() {
                return Err(format!(
                    "version {} but the other's port {p} is open",
                    name(b)
                ));
            }
        }
        let out = self.vds(b, &["status", "--node", "h1"]);
        if !out.status.success() {
            return Err(format!(
                "version {} but status fails: {}",
                name(b),
                text(&out)
            ));
        }
        Ok(b)
    }

    /// No staged file of a transaction, nor a temporary file of an install, is left on h1.
    fn no_leftovers(&self) -> Result<(), String> {
        let out = ssh(
            1,
            "test ! -e /var/lib/vds-proxy/txn && ! find /etc /usr/local -name '*.vds-tmp' | grep .",
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("left behind: {}", text(&out)))
        }
    }
}

fn name(b: bool) -> &'static str {
    if b { "B" } else { "A" }
}

/// Kills the processes on h1 that hold the host lock as an apply does (on descriptor 9):
/// the apply, the shell around it and what it runs — as a crash or the OOM killer would.
const KILL_APPLY_ON_HOST: &str = "for p in /proc/[0-9]*; do \
    [ \"$(readlink $p/fd/9 2>/dev/null)\" = /run/vds-proxy.lock ] && echo ${p#/proc/}; done | \
    xargs -r kill -9";

/// Kills every process on h1 that has the host lock open — the apply and its watcher —
/// as a power cut would (without the reboot: the host's disk and units stay as they were).
const KILL_ALL_ON_HOST: &str = "for p in /proc/[0-9]*; do \
    ls -l $p/fd 2>/dev/null | grep -q '/run/vds-proxy.lock' && echo ${p#/proc/}; done | \
    xargs -r kill -9";

/// The `ssh` processes a local process started.
fn ssh_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID …"
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|s| s.parse::<u32>().ok());
        if comm.ends_with("(ssh") && ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

#[derive(Default)]
struct Tally {
    trials: u32,
    /// Ended as the old version, as the new.
    old: u32,
    new: u32,
    consistent: u32,
    slowest: std::time::Duration,
    converged: u32,
    /// The deploy said its rollback could not put everything back (/etc read-only, no space),
    /// and the host put it back by itself once it could (no deploy).
    put_back_later: u32,
    /// After a reboot: from the host's first log line of the boot to the end of its
    /// recovery unit (the slowest).
    boot_to_recovered: Option<f64>,
}

/// Seconds from h1's first journal line of this boot to the last of its recovery unit (the
/// boot resolving a cut-off apply); `None` when that unit did not run in this boot.
fn boot_to_recovered() -> Option<f64> {
    let out = stdout(&ssh(
        1,
        "journalctl -b -o short-unix --no-pager | head -n 1 | cut -d' ' -f1; \
         journalctl -b -u vds-proxy-recover.service -o short-unix --no-pager | grep -v '^--' | tail -n 1 | cut -d' ' -f1",
    ));
    let t: Vec<f64> = out.lines().filter_map(|l| l.parse().ok()).collect();
    match t[..] {
        [boot, done] => Some(done - boot),
        _ => None,
    }
}

#[test]
fn deploys_cut_off_at_random_moments_leave_every_host_old_or_new() {
    let c = Campaign::new("faults");
    let seed: u64 = std::env::var("VDS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("fault campaign seed: {seed} (VDS_FAULT_SEED={seed} replays it)");
    let mut moments = Moments(seed);

    // A clean deploy of A, then of B: how long an apply takes sets the range of moments.
    assert_ok(&c.vds(false, &["deploy"]));
    assert_eq!(c.judge(), Ok(false));
    let t = std::time::Instant::now();
    assert_ok(&c.vds(true, &["deploy", "--node", "h1"]));
    let span = (t.elapsed().as_millis() as u64).max(500);
    let mut current = c.judge().expect("a clean deploy of B");
    assert!(current);

    let classes = [
        "kill -9 of vds-proxy",
        "every ssh child killed",
        "the apply killed on the host",
        "the apply and its watcher killed (a power cut)",
        "the host's link down 2-8 s",
        "/etc read-only mid-apply",
        "a reboot mid-apply (reboot -f)",
        "the disk full (0-256 KiB left, ENOSPC)",
        "two deploys at once",
    ];
    let mut tallies: Vec<Tally> = classes.iter().map(|_| Tally::default()).collect();
    let mut failures = Vec::new();
    for trial in 0..36 {
        let class = trial % classes.len();
        let target = !current;
        let at = moments.millis(span);
        // A full disk: all but 0-256 KiB of h1's disk is taken before the deploy comes (mid-apply
        // fills mostly landed after an apply of these versions had written everything), so the
        // apply runs out of space at a random step — staging, saving the old versions,
        // installing, or not at all. (fallocate takes the bulk at once but refuses to take
        // it all; the rest is written.)
        if class == 7 {
            assert_ok(&ssh(
                1,
                &format!(
                    "avail() {{ df --output=avail -B1 / | tail -n 1; }}; \
                     fallocate -l $(( $(avail) - 2097152 )) /var/tmp/vds-fill && \
                     head -c $(( $(avail) - {} )) /dev/zero > /var/tmp/vds-fill2",
                    moments.next() % 262_144
                ),
            ));
        }
        let on_host = match class {
            2 => Some(KILL_APPLY_ON_HOST),
            3 => Some(KILL_ALL_ON_HOST),
            5 => Some("mount --bind /etc /etc && mount -o remount,ro,bind /etc"),
            6 => Some("reboot -f"),
            _ => None,
        };
        let child = if let Some(fault) = on_host {
            // On the host, from the moment the apply took the lock.
            let after = at.as_secs_f64() / 2.0;
            let killer = ssh_command(
                1,
                &format!("{UNTIL_AN_APPLY_RUNS}; sleep {after:.3}; {fault}"),
            )
            .spawn()
            .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let child = c.spawn(target);
            let _ = killer.wait_with_output();
            child
        } else {
            let child = c.spawn(target);
            std::thread::sleep(at);
            match class {
                0 => kill9(child.id()),
                1 => ssh_children(child.id()).into_iter().for_each(kill9),
                // The other version, deployed by someone else meanwhile: it waits for the
                // host lock, and the host ends as whichever applied last.
                8 => {
                    let other = c.vds(current, &["deploy", "--node", "h1"]);
                    if !other.status.success() {
                        failures.push(format!(
                            "trial {trial}: the second of two deploys at once failed: {}",
                            text(&other)
                        ));
                    }
                }
                _ => {
                    let down = 2000 + moments.millis(6000).as_millis() as u64;
                    let link = |state: &str| {
                        let ok = Command::new("ip")
                            .args(["link", "set", "ve-h1", state])
                            .status()
                            .unwrap()
                            .success();
                        assert!(ok, "ip link set ve-h1 {state}");
                    };
                    link("down");
                    std::thread::sleep(std::time::Duration::from_millis(down));
                    link("up");
                }
            }
            child
        };
        let run = child.wait_with_output().unwrap();
        if matches!(class, 5 | 7) && text(&run).contains("neither the old nor the new version") {
            // Before the operator fixes the host: `status` says what is wrong and that the
            // host keeps trying.
            let out = c.vds(target, &["status", "--node", "h1"]);
            if out.status.code() != Some(1) || !text(&out).contains("It tries again by itself") {
                failures.push(format!(
                    "trial {trial}: status of a host whose rollback is stuck: {}",
                    text(&out)
                ));
            }
        }
        if class == 5 {
            // /etc is writable again (the host's operator fixed it): nothing is redeployed.
            ssh(1, "while mountpoint -q /etc; do umount /etc || break; done");
        }
        if class == 7 {
            // The operator frees the disk: nothing is redeployed.
            assert_ok(&ssh(1, "rm -f /var/tmp/vds-fill /var/tmp/vds-fill2"));
        }
        if class == 8 && !run.status.success() {
            failures.push(format!(
                "trial {trial}: the first of two deploys at once failed: {}",
                text(&run)
            ));
        }
        let what = format!(
            "trial {trial} ({}, {} → {}, at {} ms)",
            classes[class],
            name(current),
            name(target),
            at.as_millis()
        );
        let tally = &mut tallies[class];
        tally.trials += 1;
        // Without another deploy: the host ends old or new by itself.
        let limit = if class == 3 { 5 } else { 60 };
        let waited = apply_settled(1, std::time::Duration::from_secs(limit));
        match (class, waited) {
            // Nothing is left on the host to finish the apply: its transaction waits for the
            // next deploy, and `status` says so.
            (3, _) if ssh(1, "test -d /var/lib/vds-proxy/txn").status.success() => {
                let out = c.vds(target, &["status", "--node", "h1"]);
                if out.status.code() != Some(1) || !text(&out).contains("interrupted deploy") {
                    failures.push(format!(
                        "{what}: status of a host with a cut-off apply: {}",
                        text(&out)
                    ));
                }
            }
            (_, Some(w)) => match c.judge() {
                Ok(v) => {
                    tally.consistent += 1;
                    if v == target {
                        tally.new += 1;
                    } else {
                        tally.old += 1;
                    }
                    tally.slowest = tally.slowest.max(w);
                    if class == 6 {
                        match boot_to_recovered() {
                            Some(t) => {
                                tally.boot_to_recovered =
                                    Some(tally.boot_to_recovered.unwrap_or(0.0).max(t))
                            }
                            None => failures.push(format!(
                                "{what}: the host is consistent, but its boot did not run the recovery"
                            )),
                        }
                    }

                    if let Err(e) = c.no_leftovers() {
                        failures.push(format!("{what}: {e}"));
                    }
                    if text(&run).contains("neither the old nor the new version") {
                        tally.put_back_later += 1;
                    }
                    // Where vds-proxy lived on, it says what happened; it never says a
                    // host it lost is done when the host went back.
                    let told = match class {
                        1 | 4 | 5 | 7 => run.status.success() == (v == target),
                        // Both succeed; the host is whichever applied last.
                        8 => true,
                        _ => !run.status.success() || v == target,
                    };
                    if !told {
                        failures.push(format!(
                            "{what}: the deploy exited {:?} but the host is version {}: {}",
                            run.status.code(),
                            name(v),
                            text(&run)
                        ));
                    }
                }
                Err(e) => failures.push(format!(
                    "{what}: without a deploy: {e}\n  the cut deploy said: {}\n  a dry run of {} says: {}",
                    text(&run),
                    name(target),
                    text(&c.vds(target, &["deploy", "--dry-run", "--node", "h1"]))
                )),
            },
            (_, None) => {
                let status = c.vds(target, &["status", "--node", "h1"]);
                failures.push(format!(
                    "{what}: the host did not settle within {limit} s; status says: {}",
                    text(&status)
                ))
            }
        }
        // The next deploy converges, and the one after it changes nothing.
        let out = c.vds(target, &["deploy", "--node", "h1"]);
        match (out.status.success(), c.judge()) {
            (true, Ok(v)) if v == target => {
                let again = c.vds(target, &["deploy", "--node", "h1"]);
                if again.status.success()
                    && stdout(&again).contains("h1    0        ok (no changes)")
                {
                    tally.converged += 1;
                } else {
                    failures.push(format!(
                        "{what}: the deploy after the next is not a no-op: {}",
                        text(&again)
                    ));
                }
            }
            (_, judged) => failures.push(format!(
                "{what}: the next deploy did not converge ({judged:?}): {}",
                text(&out)
            )),
        }
        current = target;
    }
    for (class, t) in classes.iter().zip(&tallies) {
        eprintln!(
            "{class}: {} trials, {} consistent without a deploy ({} old, {} new; slowest {:.1} s{}), {} put back by the host once it could, {} converged after one deploy",
            t.trials,
            t.consistent,
            t.old,
            t.new,
            t.slowest.as_secs_f64(),
            t.boot_to_recovered
                .map(|b| format!(", boot to recovered at most {b:.1} s"))
                .unwrap_or_default(),
            t.put_back_later,
            t.converged
        );
    }
    // Nothing of vds-proxy's is left after `remove`.
    let out = c.vds(current, &["remove"]);
    assert_ok(&out);
    let left = stdout(&ssh(
        1,
        "ls -d /etc/vds-proxy /usr/local/lib/vds-proxy /var/lib/vds-proxy /etc/systemd/system/vds-* \
         /etc/systemd/system/socat-* /etc/systemd/system/*/vds-* /etc/systemd/system/*/socat-* 2>/dev/null",
    ));
    assert_eq!(left, "", "left after remove");
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}

/// A rollback that cannot put the files back (here /etc turned read-only after the new
/// version's files went in, and the new relay cannot take its port, so the deploy rolls
/// back) leaves the host neither old nor new and says so; the host keeps trying, `status`
/// says that, and once /etc is writable again the host is the old version by itself —
/// files, ports, no transaction — without another deploy.
#[test]
fn a_rollback_that_cannot_write_etc_is_finished_by_the_host_once_it_can() {
    let c = Campaign::new("stuck-rollback");
    assert_ok(&c.vds(false, &["deploy"]));
    assert_eq!(c.judge(), Ok(false));
    // Version B's relay port is taken, and /etc turns read-only once B's files are in.
    assert_ok(&ssh(
        1,
        "systemctl stop port-taker 2>/dev/null; systemctl reset-failed port-taker 2>/dev/null; systemd-run --collect --unit=port-taker socat TCP-LISTEN:8453,reuseaddr,fork EXEC:true",
    ));
    let fault = ssh_command(
        1,
        &format!(
            "{UNTIL_AN_APPLY_RUNS}; timeout 30 sh -c 'until grep -rqs 8453 /etc/vds-proxy; do sleep 0.01; done' && \
             mount --bind /etc /etc && mount -o remount,ro,bind /etc"
        ),
    )
    .spawn()
    .unwrap();
    let run = c.vds(true, &["deploy", "--node", "h1"]);
    assert!(fault.wait_with_output().unwrap().status.success());
    let said = text(&run);
    assert!(!run.status.success(), "{said}");
    assert!(
        said.contains("neither the old nor the new version"),
        "{said}"
    );
    assert!(said.contains("tries again by itself"), "{said}");
    // Stuck meanwhile, and `status` says so.
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(
        ssh(1, "test -s /var/lib/vds-proxy/txn/unrestored")
            .status
            .success()
    );
    let out = c.vds(false, &["status", "--node", "h1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("It tries again by itself"),
        "{}",
        text(&out)
    );
    // The operator makes /etc writable again (and frees the port): nothing is redeployed.
    ssh(
        1,
        "while mountpoint -q /etc; do umount /etc || break; done; systemctl stop port-taker",
    );
    let waited = apply_settled(1, std::time::Duration::from_secs(20));
    assert!(
        waited.is_some(),
        "the host did not finish its rollback within 20 s"
    );
    eprintln!(
        "put back {:.1} s after /etc was writable again",
        waited.unwrap().as_secs_f64()
    );
    assert_eq!(c.judge(), Ok(false));
    c.no_leftovers().unwrap();
    let journal = stdout(&ssh(1, "journalctl -t vds-proxy --no-pager -o cat"));
    assert!(journal.contains("files are all back now"), "{journal}");
    assert_ok(&c.vds(false, &["remove"]));
}
