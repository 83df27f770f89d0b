//! Config templates: each system's files, embedded in the binary by the systems that
//! render them, overridable file by file from a directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior, Value};

/// A template failed to render; names the template and line.
#[derive(Debug, thiserror::Error)]
#[error("template {name}{line}: {detail}{origin}")]
pub struct TemplateError {
    pub name: String,
    line: String,
    detail: String,
    origin: String,
}

/// The set of templates used to render a plan.
pub struct Templates {
    env: Environment<'static>,
    overrides: Option<PathBuf>,
}

impl Templates {
    /// The embedded templates `embedded` (name, text), with files in `overrides` (if any)
    /// taking precedence.
    pub fn new(
        overrides: Option<&Path>,
        embedded: impl IntoIterator<Item = (&'static str, &'static str)>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default delimiters are valid"),
        );
        // Each value reaches a file through the escaping of that file's format: one value
        // in, exactly one value out (see the property tests in tests/escaping.rs).
        env.add_filter("systemd_escape", systemd_escape);
        env.add_filter("systemd", systemd_quote);
        env.add_filter("toml", toml_string);
        // `quote` is the older name of `toml` (templates overridden by users still use it).
        env.add_filter("quote", toml_string);
        env.add_filter("nginx", nginx_string);
        env.add_filter("yaml", yaml_string);
        env.add_filter("nft", nft_string);
        for (name, text) in embedded {
            let text = match overrides {
                Some(dir) if dir.join(name).is_file() => {
                    let p = dir.join(name);
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading template override {}", p.display()))?
                }
                _ => (*text).to_string(),
            };
            env.add_template_owned(name, text)
                .map_err(|e| anyhow::Error::new(template_error(name, &e, overrides)))?;
        }
        if let Some(dir) = overrides {
            anyhow::ensure!(
                dir.is_dir(),
                "template directory {} does not exist; fix `templates` in vds-proxy.toml or --templates",
                dir.display()
            );
        }
        Ok(Templates {
            env,
            overrides: overrides.map(Path::to_path_buf),
        })
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| template_error(name, &e, self.overrides.as_deref()))
    }
}

fn template_error(name: &str, e: &minijinja::Error, overrides: Option<&Path>) -> TemplateError {
    let origin = match overrides {
        Some(dir) if dir.join(name).is_file() => {
            format!(" (override {})", dir.join(name).display())
        }
        _ => " (embedded)".to_string(),
    };
    let mut detail = e.kind().to_string();
    if let Some(d) = e.detail() {
        detail = format!("{detail}: {d}");
    }
    TemplateError {
        name: name.to_string(),
        line: e.line().map(|l| format!(" line {l}")).unwrap_or_default(),
        detail,
        origin,
    }
}

/// Escapes `%` for systemd unit files (`%` starts a specifier there).
pub fn systemd_escape(s: String) -> String {
    s.replace('%', "%%")
}

/// A TOML basic string: `"` and `\\` escaped, every control character (and DEL) as an
/// escape, so a value can end neither the string nor the line.
pub fn toml_string(s: String) -> String {
    quoted(&s, |c| match c {
        '\n' => Some("\\n".into()),
        '\t' => Some("\\t".into()),
        '\r' => Some("\\r".into()),
        c if c.is_control() => Some(format!("\\u{:04X}", c as u32)),
        _ => None,
    })
}

/// A YAML double-quoted scalar: `"` and `\\` escaped, and every character YAML may not
/// hold raw or would read as a line break (control characters, DEL, the C1 range, the
/// Unicode line and paragraph separators, U+FEFF, U+FFFE, U+FFFF) as `\\uXXXX`.
pub fn yaml_string(s: String) -> String {
    quoted(&s, |c| {
        let raw_not_allowed = c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            );
        raw_not_allowed.then(|| format!("\\u{:04X}", c as u32))
    })
}

/// One double-quoted word of a systemd unit file (an `Environment=` assignment, an
/// argument): `"` and `\\` escaped, control characters as C escapes, `%` doubled (it starts
/// a specifier), so a value can add neither a word, a variable nor a line. What systemd
/// cannot hold is an error: NUL, and the noncharacters it takes for unclean UTF-8 (a unit
/// with one fails to load).
pub fn systemd_quote(s: String) -> Result<String, minijinja::Error> {
    if let Some(c) = s.chars().find(|c| !systemd_holds(*c)) {
        return Err(refused(c, "a unit file"));
    }
    Ok(quoted(&s, |c| match c {
        '%' => Some("%%".into()),
        '\n' => Some("\\n".into()),
        '\t' => Some("\\t".into()),
        '\r' => Some("\\r".into()),
        c if (c as u32) < 0x80 && c.is_control() => Some(format!("\\x{:02x}", c as u32)),
        c if c.is_control() => Some(format!("\\u{:04x}", c as u32)),
        _ => None,
    }))
}

/// `s` in double quotes, `"` and `\\` escaped with a backslash (as every quoting format
/// here escapes them), and each other character as `special` writes it (`None`: as is).
fn quoted(s: &str, special: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => match special(c) {
                Some(e) => out.push_str(&e),
                None => out.push(c),
            },
        }
    }
    out.push('"');
    out
}

/// The error of a filter for a character its format cannot hold: the template fails,
/// nothing is written.
fn refused(c: char, format: &str) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("{c:?} cannot be written into {format}"),
    )
}

/// One double-quoted nftables string (an interface name, a comment): nft has no escape
/// for `"`, and a control character or more than 128 bytes has no place there, so either
/// is an error, never written.
pub fn nft_string(s: String) -> Result<String, minijinja::Error> {
    if let Some(c) = s.chars().find(|c| *c == '"' || c.is_control()) {
        return Err(refused(c, "an nftables string"));
    }
    if s.len() > 128 {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "an nftables string holds at most 128 bytes",
        ));
    }
    Ok(format!("\"{s}\""))
}

/// Whether systemd keeps `c` in a value: not NUL, not a Unicode noncharacter.
pub fn systemd_holds(c: char) -> bool {
    let n = c as u32;
    c != '\0' && !(0xFDD0..=0xFDEF).contains(&n) && n & 0xFFFE != 0xFFFE
}

/// One double-quoted nginx string: `"` and `\\` escaped. nginx has no escape for `$` (it
/// starts a variable in most directives) and a control character has no place in a
/// config value, so either is an error, never written.
pub fn nginx_string(s: String) -> Result<String, minijinja::Error> {
    if let Some(c) = s.chars().find(|c| *c == '$' || c.is_control()) {
        return Err(refused(c, "an nginx string"));
    }
    Ok(quoted(&s, |_| None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn undefined_variable_is_an_error_naming_template_and_line() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-tpl-test-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("replica.env.j2"), "A=1\nPORT={{ no_such_var }}\n").unwrap();
        let t = Templates::new(Some(&dir), [("replica.env.j2", "A=1\n")]).unwrap();
        let err = t
            .render("replica.env.j2", context! {})
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("template replica.env.j2 line 2: undefined value"),
            "{err}"
        );
        assert!(err.contains("override"), "{err}");
    }

    #[test]
    fn quote_escapes_for_toml() {
        assert_eq!(toml_string(r#"a"b\c"#.into()), r#""a\"b\\c""#);
        assert_eq!(toml_string("a\nb\u{0}".into()), r#""a\nb\u0000""#);
    }
}
