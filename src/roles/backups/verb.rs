//! `vds-proxy backup list|restore NODE`: the dumps on a node, a restore into a new (or,
//! with `--force`, an existing) database, and `restore --verify`, a restore drill that
//! puts the newest dump into a scratch database, compares its tables with the live
//! database's and drops it — for CI.

use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Backup, DATABASE, TOOL, of};
use crate::contract::BadInput;
use crate::contract::{Verb, VerbCtx};
use crate::shell::quote;

/// The `backup` verb.
pub fn verb() -> Verb {
    Verb { command, run }
}

fn node_arg() -> Arg {
    Arg::new("node")
        .required(true)
        .value_name("NODE")
        .help("The node the dumps are on")
}

fn database_arg() -> Arg {
    Arg::new("database")
        .long("database")
        .value_name("DB")
        .help("Which database's dumps, when the node backs up more than one")
}

fn command() -> Command {
    Command::new("backup")
        .about("PostgreSQL backups on a node: list the dumps, restore one, or check that the newest restores")
        .subcommand_required(true)
        .subcommand(
            Command::new("list")
                .about("The dumps kept on the node, newest first, with their checksum state")
                .arg(node_arg())
                .arg(database_arg()),
        )
        .subcommand(
            Command::new("restore")
                .about("Restore a dump (default: the newest daily) into a new database; an existing one only with --force")
                .arg(node_arg())
                .arg(Arg::new("dump").value_name("DUMP").help("A dump's name as `backup list` shows it"))
                .arg(database_arg())
                .arg(
                    Arg::new("into")
                        .long("into")
                        .value_name("DB")
                        .help("The database to restore into [default: a new DB_restore_TIME]"),
                )
                .arg(
                    Arg::new("force")
                        .long("force")
                        .action(ArgAction::SetTrue)
                        .help("Restore over an existing database (its objects are dropped first)"),
                )
                .arg(
                    Arg::new("verify")
                        .long("verify")
                        .action(ArgAction::SetTrue)
                        .conflicts_with_all(["dump", "into", "force"])
                        .help("Restore the newest dump into a scratch database, check it has the live database's tables, drop it; exit 1 if not"),
                ),
        )
}

/// A dump name as the tool writes them: `DB-YYYY-MM-DD.dump`, `DB-YYYY-Www.dump`,
/// `DB-YYYY-MM.dump`.
fn is_dump_name(db: &str, name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(db)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix(".dump"))
    else {
        return false;
    };
    !stamp.is_empty()
        && stamp.len() <= 10
        && stamp
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b'-' || c == b'W')
}

fn pick<'a>(ctx: &'a VerbCtx, node: &str, database: Option<&String>) -> Result<&'a Backup> {
    if ctx.inv.node(node).is_none() {
        return Err(BadInput(format!("no node {node} in the inventory")).into());
    }
    let mine: Vec<&Backup> = of(ctx.inv).iter().filter(|b| b.node == node).collect();
    let names = || {
        mine.iter()
            .map(|b| b.database.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match database {
        Some(db) => mine
            .iter()
            .copied()
            .find(|b| &b.database == db)
            .ok_or_else(|| {
                BadInput(format!(
                    "--database {db}: node {node} backs up {}",
                    if mine.is_empty() {
                        "no database".to_string()
                    } else {
                        names()
                    }
                ))
                .into()
            }),
        None => match mine.as_slice() {
            [one] => Ok(one),
            [] => Err(BadInput(format!(
                "node {node} has no backups in the inventory (\"backups\")"
            ))
            .into()),
            _ => Err(BadInput(format!(
                "node {node} backs up several databases ({}); say which with --database",
                names()
            ))
            .into()),
        },
    }
}

/// Runs the tool for backup `b` on its node; its stdout, or exit 1 with its message.
fn tool(ctx: &VerbCtx, b: &Backup, args: &[&str]) -> Result<std::result::Result<String, String>> {
    let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let script = format!(
        "if [ ! -x {TOOL} ]; then echo 'backups are not deployed on this node yet: run vds-proxy deploy' >&2; exit 1; fi\n{}{TOOL} {}\n",
        super::tool_env(b),
        quoted.join(" ")
    );
    let out = (ctx.run_on)(&b.node, &script)?;
    Ok(if out.status == 0 {
        Ok(out.stdout)
    } else {
        Err(out.stderr.trim().to_string())
    })
}

fn fail(message: &str) -> Result<i32> {
    for line in message.lines() {
        eprintln!("error: {line}");
    }
    Ok(1)
}

fn run(ctx: &VerbCtx, m: &ArgMatches) -> Result<i32> {
    let (sub, args) = m.subcommand().expect("a subcommand is required");
    let node = args.get_one::<String>("node").expect("required");
    let b = pick(ctx, node, args.get_one::<String>("database"))?;
    match sub {
        "list" => match tool(ctx, b, &["list", &b.database, &b.directory])? {
            Ok(out) => {
                let mut rows = vec![["KIND", "DUMP", "SIZE", "CHECKSUM"].map(String::from)];
                for line in out.lines().filter_map(|l| l.strip_prefix("@dump ")) {
                    let w: Vec<&str> = line.split_whitespace().collect();
                    if let [kind, name, size, sum] = w[..] {
                        let mb = size.parse::<f64>().unwrap_or(0.0) / 1e6;
                        rows.push([kind, name, &format!("{mb:.1} MB"), sum].map(String::from));
                    }
                }
                print!("{}", crate::contract::table::table(&rows));
                Ok(0)
            }
            Err(e) => fail(&e),
        },
        _ if args.get_flag("verify") => {
            match tool(ctx, b, &["verify", &b.database, &b.directory, &b.os_user])? {
                Ok(out) => {
                    let line = out
                        .lines()
                        .find_map(|l| l.strip_prefix("@verified "))
                        .unwrap_or("");
                    let (dump, tables) = line.split_once(' ').unwrap_or((line, "?"));
                    println!(
                        "{node}: {dump} restores, with {tables} table(s) and every table {} has",
                        b.database
                    );
                    Ok(0)
                }
                Err(e) => fail(&e),
            }
        }
        _ => restore(ctx, node, b, args),
    }
}

fn restore(ctx: &VerbCtx, node: &str, b: &Backup, args: &ArgMatches) -> Result<i32> {
    let dump = match args.get_one::<String>("dump") {
        Some(d) if is_dump_name(&b.database, d) => d.clone(),
        Some(d) => {
            return Err(BadInput(format!(
                "{d:?} is not a dump of {}; expected a name from `vds-proxy backup list {node}`, e.g. {}-2026-11-23.dump",
                b.database, b.database
            ))
            .into());
        }
        None => match tool(ctx, b, &["list", &b.database, &b.directory])? {
            Ok(out) => match out
                .lines()
                .filter_map(|l| l.strip_prefix("@dump daily "))
                .find_map(|l| l.split_whitespace().next())
            {
                Some(newest) => newest.to_string(),
                None => return fail(&format!("no daily dump of {} on {node} yet", b.database)),
            },
            Err(e) => return fail(&e),
        },
    };
    let into = match args.get_one::<String>("into") {
        Some(db) if (DATABASE.ok)(db) => db.clone(),
        Some(db) => {
            return Err(BadInput(format!("--into {db:?} {}", DATABASE.hint)).into());
        }
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{}_restore_{secs}", b.database)
        }
    };
    let force = if args.get_flag("force") {
        "force"
    } else {
        "no"
    };
    let res = tool(
        ctx,
        b,
        &[
            "restore",
            &b.database,
            &b.directory,
            &dump,
            &into,
            force,
            &b.os_user,
        ],
    )?;
    match res {
        Ok(out) => {
            let tables = out
                .lines()
                .find_map(|l| l.strip_prefix("@restored "))
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or("?");
            println!("{node}: restored {dump} into database {into} ({tables} table(s))");
            Ok(0)
        }
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tools_own_dump_names_are_taken() {
        assert!(is_dump_name("app", "app-2026-11-23.dump"));
        assert!(is_dump_name("app", "app-2026-W47.dump"));
        assert!(is_dump_name("app", "app-2026-11.dump"));
        assert!(!is_dump_name("app", "other-2026-11.dump"));
        assert!(!is_dump_name("app", "app-../../etc/passwd.dump"));
        assert!(!is_dump_name("app", "app-2026-11-23.dump; rm -rf /"));
    }
}
