//! The layout rules, checked on the source: imports only go down the layers (the contract
//! below both the engine and the systems, the one list of systems at the top), no import
//! cycle between top-level modules or between systems, and the engine and the verbs never
//! name a system.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vds_proxy::roles;

fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
        {
            out.push(p);
        }
    }
}

/// A system's own tests (`testbed.rs`, `render.rs`, `cli.rs` in its folder): modules of the
/// test binaries that include them (build.rs lists them), not of the library.
fn is_test_file(p: &Path) -> bool {
    let in_system = p
        .parent()
        .and_then(|d| d.parent())
        .is_some_and(|d| d == src().join("roles"));
    in_system
        && p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| ["testbed.rs", "render.rs", "cli.rs"].contains(&n))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a source file under `src/` (`roles/web/plan.rs` → roles, web, plan).
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The node of the module graph a module path folds to: its top-level module, or for a
/// system, its folder (`roles/web`).
fn node_of(path: &[String]) -> Option<String> {
    let first = path.first()?;
    if first == "roles" && path.len() > 1 && src().join("roles").join(&path[1]).is_dir() {
        return Some(format!("roles/{}", path[1]));
    }
    Some(first.clone())
}

/// The source without comments (so a doc link is not an import) and string literals.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                kept.push(c);
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The module paths a file's `crate::` and `super::` paths name (braces expanded).
fn imports(module: &[String], is_mod_rs: bool, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let word_at = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
            j += 1;
        }
        (bytes[i..j].iter().collect(), j)
    };
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let (w, mut j) = word_at(i);
        if !boundary || (w != "crate" && w != "super") {
            i = j.max(i + 1);
            continue;
        }
        // The base: the crate root, or the parent of this file's module per `super`.
        let mut base: Vec<String> = if w == "crate" {
            Vec::new()
        } else {
            // `mod.rs` files have their folder's path already: `super` is one up either way.
            let _ = is_mod_rs;
            let mut m = module.to_vec();
            m.pop();
            m
        };
        let mut segs = Vec::new();
        while bytes.get(j) == Some(&':') && bytes.get(j + 1) == Some(&':') {
            j += 2;
            if bytes.get(j) == Some(&'{') {
                // A group: each item's first segment.
                let mut depth = 0;
                let mut item = String::new();
                let mut items = Vec::new();
                while j < bytes.len() {
                    let c = bytes[j];
                    j += 1;
                    match c {
                        '{' => {
                            depth += 1;
                            if depth > 1 {
                                item.push(c)
                            }
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                items.push(item.clone());
                                break;
                            }
                            item.push(c);
                        }
                        ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                        c => item.push(c),
                    }
                }
                for it in items {
                    let first = it
                        .trim()
                        .split("::")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if !first.is_empty() && first != "self" {
                        let mut p = base.clone();
                        p.extend(segs.iter().cloned());
                        p.push(first);
                        out.push(p);
                    } else if first == "self" {
                        let mut p = base.clone();
                        p.extend(segs.iter().cloned());
                        out.push(p);
                    }
                }
                segs.clear();
                break;
            }
            let (s, k) = word_at(j);
            if s.is_empty() {
                break;
            }
            if s == "super" && segs.is_empty() {
                base.pop();
            } else {
                segs.push(s);
            }
            j = k;
        }
        // A macro exported at the crate root (`crate::relay_log!`) names no module.
        let is_macro = bytes.get(j) == Some(&'!');
        if !segs.is_empty() && !is_macro {
            base.extend(segs);
            out.push(base);
        }
        i = j.max(i + 1);
    }
    out
}

/// The imports of a file, an inline module (`mod tests { ... }` at the start of a line) read
/// as one level deeper.
fn file_imports(module: &[String], is_mod_rs: bool, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut outer = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let inline = line
            .strip_prefix("mod ")
            .and_then(|r| r.strip_suffix(" {"))
            .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'));
        match inline {
            Some(name) => {
                let mut inner = String::new();
                for l in lines.by_ref() {
                    if l == "}" {
                        break;
                    }
                    inner.push_str(l);
                    inner.push('\n');
                }
                let mut m = module.to_vec();
                m.push(name.to_string());
                out.extend(imports(&m, false, &inner));
            }
            None => {
                outer.push_str(line);
                outer.push('\n');
            }
        }
    }
    out.extend(imports(module, is_mod_rs, &outer));
    out
}

/// Every edge between the graph's nodes: (from, to) → the files that make it.
fn edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut list = Vec::new();
    files(&src(), &["rs"], &mut list);
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in list.into_iter().filter(|f| !is_test_file(f)) {
        let module = module_of(&f);
        if module == ["lib"] || module == ["main"] {
            continue;
        }
        let from = node_of(&module).unwrap();
        let is_mod_rs = f.file_name().is_some_and(|n| n == "mod.rs");
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        for path in file_imports(&module, is_mod_rs, &code) {
            if let Some(to) = node_of(&path)
                && to != from
            {
                let rel = f.strip_prefix(src()).unwrap().display().to_string();
                out.entry((from.clone(), to)).or_default().insert(rel);
            }
        }
    }
    out
}

/// The layer of a node: a node may import only from its own layer or below.
fn layer(node: &str) -> u8 {
    match node {
        // The bundled servers (relay, registry): below everything that deploys them.
        "relay" | "serve" => 0,
        // The contract: the traits and data a system exchanges with the engine, the
        // inventory reader and its value types, resources, templates, shell quoting,
        // redaction, settings and the transport.
        "contract" | "inventory" | "resources" | "templates" | "shell" | "redact" | "settings"
        | "transport" => 1,
        n if n.starts_with("roles/") => 2,
        // The plan: what every system wants, per node.
        "plan" => 3,
        // The engine and the printing of plans and checks, which know no system.
        "engine" | "show" => 4,
        // The top: the verbs, the command line and the one list of systems (`roles/mod.rs`).
        "app" | "cli" | "commands" | "roles" => 5,
        other => panic!("module {other} has no layer in tests/layout.rs; give it one"),
    }
}

#[test]
fn imports_only_go_down_the_layers() {
    let mut wrong = Vec::new();
    for ((from, to), files) in edges() {
        let (lf, lt) = (layer(&from), layer(&to));
        // Within a layer only systems, the contract's modules and the top import each
        // other (without cycles: checked below); the engine and `show` stay apart.
        let sideways_ok = lf == lt && lf != 4;
        if lt > lf || (lf == lt && !sideways_ok) {
            wrong.push(format!(
                "{from} -> {to} ({})",
                files.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up (or across the engine):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycle_between_folders_or_systems() {
    let edges = edges();
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        adj.entry(from).or_default().insert(to);
        adj.entry(to).or_default();
    }
    assert!(
        adj.len() > 20,
        "the graph has only {} nodes: is the reader broken?",
        adj.len()
    );
    assert!(adj.keys().filter(|n| n.starts_with("roles/")).count() >= 12);
    // Depth-first search; a back edge is a cycle, reported with its path.
    fn visit<'a>(
        n: &'a str,
        adj: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for &m in &adj[n] {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == m).unwrap();
                    cycles.push(format!("{} -> {m}", stack[at..].join(" -> ")));
                }
                Some(_) => {}
                None => visit(m, adj, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for &n in adj.keys() {
        if !state.contains_key(n) {
            visit(n, &adj, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    let detail: Vec<String> = cycles
        .iter()
        .map(|c| {
            let hops: Vec<&str> = c.split(" -> ").collect();
            let why: Vec<String> = hops
                .windows(2)
                .map(|w| {
                    format!(
                        "  {} -> {}: {:?}",
                        w[0],
                        w[1],
                        edges[&(w[0].to_string(), w[1].to_string())]
                    )
                })
                .collect();
            format!("{c}\n{}", why.join("\n"))
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", detail.join("\n"));
}

#[test]
fn the_reader_sees_grouped_relative_and_nested_paths() {
    let m = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
    let code = code_of(
        "use crate::{engine::gather, show};\nuse super::super::plan::Plan; // crate::cli\nlet s = \"crate::app\";\nx(crate::roles::web::CERT);\n",
    );
    let got = imports(&m("roles/wireguard/keys"), false, &code);
    let want = vec![
        m("engine"),
        m("show"),
        m("roles/plan/Plan"),
        m("roles/web/CERT"),
    ];
    assert_eq!(got, want);
    // In a mod.rs, `super` is the folder's parent.
    assert_eq!(
        imports(&m("roles/web"), true, "use super::routes;"),
        vec![m("roles/routes")]
    );
}

/// Words that name a system: its name, singular and plural, and what users call the
/// systems.
fn system_words() -> Vec<String> {
    let mut words = Vec::new();
    for s in roles::all().all {
        let name = s.name().to_lowercase();
        words.push(name.trim_end_matches('s').to_string());
        words.push(format!("{}s", name.trim_end_matches('s')));
    }
    words.extend(["haproxy", "socat", "forwarder", "kubectl"].map(String::from));
    words
}

#[test]
fn the_engine_and_the_commands_never_name_a_system() {
    let mut found = Vec::new();
    let words = system_words();
    let names: Vec<&str> = roles::all().all.iter().map(|s| s.name()).collect();
    for dir in ["engine", "commands", "contract"] {
        let mut list = Vec::new();
        files(&src().join(dir), &["rs", "sh"], &mut list);
        assert!(!list.is_empty(), "src/{dir} has no source files");
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
                for n in &names {
                    if line.contains(&format!("roles::{n}")) {
                        found.push(format!("{}:{}: {line}", f.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "system names in the engine, the contract or the commands:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_system_has_its_reference_in_its_folder_and_a_row_in_the_index() {
    let readme = std::fs::read_to_string(src().join("../README.md")).unwrap();
    for s in roles::all().all {
        let dir = src().join("roles").join(s.name());
        assert!(
            dir.join("README.md").is_file(),
            "system {} has no README.md in its folder",
            s.name()
        );
        assert!(
            readme.contains(&format!("(src/roles/{}/README.md)", s.name())),
            "the README's index of systems has no row for {}",
            s.name()
        );
    }
}

#[test]
fn every_system_has_its_own_folder_and_a_distinct_name() {
    let mut names: Vec<&str> = roles::all().all.iter().map(|s| s.name()).collect();
    for n in &names {
        assert!(
            src().join("roles").join(n).join("mod.rs").is_file(),
            "system {n} has no folder src/roles/{n}/"
        );
    }
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "two systems share a name");
}

/// What the last structure step left: no Rust line past 160 characters (the tests a system
/// keeps in its folder, like those in `tests/`, may hold longer inventories and scripts),
/// and nothing written to nodes speaks of our background notes ("seeds"). (Templates and shell keep their
/// long lines: they are what lands on the node.)
#[test]
fn source_lines_fit_and_templates_speak_the_users_words() {
    let mut list = Vec::new();
    files(&src(), &["rs", "sh", "j2"], &mut list);
    let mut wrong = Vec::new();
    for f in list {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let ext = f.extension().and_then(|e| e.to_str());
            if ext == Some("rs") && !is_test_file(&f) && line.chars().count() > 160 {
                wrong.push(format!(
                    "{}:{}: {} characters",
                    f.display(),
                    i + 1,
                    line.chars().count()
                ));
            }
            if ext != Some("rs") && line.to_lowercase().contains("seed") {
                wrong.push(format!("{}:{}: says \"seed\": {line}", f.display(), i + 1));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
