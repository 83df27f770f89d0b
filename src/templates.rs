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
        env.add_filter("systemd_escape", systemd_escape);
        env.add_filter("quote", quote);
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
fn systemd_escape(s: String) -> String {
    s.replace('%', "%%")
}

/// A double-quoted string literal valid in TOML and systemd unit files.
fn quote(s: String) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn undefined_variable_is_an_error_naming_template_and_line() {
        let dir = std::env::temp_dir().join(format!("vds-tpl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quote_escapes_for_toml() {
        assert_eq!(quote(r#"a"b\c"#.into()), r#""a\"b\\c""#);
    }
}
