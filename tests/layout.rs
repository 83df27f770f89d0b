//! The engine and the verbs know the systems vds-proxy builds only through the role trait
//! and registry: no role's name, and no path into a role's module, appears in their source
//! (Rust or shell).

use std::path::{Path, PathBuf};

use vds_proxy::roles;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("rs" | "sh")) {
            out.push(p);
        }
    }
}

/// Words that name a role: its name, singular and plural, and what users call the systems
/// the roles build.
fn role_words() -> Vec<String> {
    let mut words = Vec::new();
    for r in roles::ALL {
        let name = r.name().to_lowercase();
        words.push(name.trim_end_matches('s').to_string());
        words.push(format!("{}s", name.trim_end_matches('s')));
    }
    words.extend(["haproxy", "socat", "forwarder", "kubectl"].map(String::from));
    words
}

#[test]
fn the_engine_and_the_commands_never_name_a_role() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let words = role_words();
    for dir in ["src/engine", "src/commands"] {
        let mut list = Vec::new();
        files(&root.join(dir), &mut list);
        assert!(!list.is_empty(), "{dir} has no source files");
        for f in list {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let lower = line.to_lowercase();
                let tokens: Vec<&str> = lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|t| !t.is_empty())
                    .collect();
                for w in &words {
                    if tokens.contains(&w.as_str()) {
                        found.push(format!("{}:{}: {w}: {line}", f.display(), i + 1));
                    }
                }
                for r in roles::ALL {
                    if line.contains(&format!("roles::{}", r.name())) {
                        found.push(format!("{}:{}: {line}", f.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "role names in the engine or the commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_role_has_its_own_folder_and_a_distinct_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<&str> = roles::ALL.iter().map(|r| r.name()).collect();
    for n in &names {
        assert!(
            root.join("src/roles").join(n).join("mod.rs").is_file(),
            "role {n} has no folder src/roles/{n}/"
        );
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "two roles share a name");
}
