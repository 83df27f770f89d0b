//! Lists each system's own test files (`src/roles/<name>/testbed.rs` for real hosts,
//! `cli.rs` for the command line, `render.rs` for its rendered example), so
//! `tests/testbed.rs`, `tests/cli.rs` and `tests/render.rs` include every system's tests
//! without naming the systems: adding a system adds its tests.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=src/roles");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/roles");
    let mut systems: Vec<_> = std::fs::read_dir(&roles)
        .expect("src/roles is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    systems.sort();
    for file in ["testbed", "cli", "render"] {
        let mut text = String::new();
        for s in &systems {
            let path = roles.join(s).join(format!("{file}.rs"));
            if path.is_file() {
                writeln!(text, "#[path = {:?}]\nmod {s}_system;", path.display()).unwrap();
            }
        }
        std::fs::write(
            Path::new(&out).join(format!("system_{file}_tests.rs")),
            text,
        )
        .expect("OUT_DIR is writable");
    }
}
