//! Quoting for the POSIX shell commands vds-proxy sends to hosts.

/// Quotes `s` as one POSIX shell word: single quotes, with embedded quotes escaped.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `NAME ARG...` with every argument quoted: one call of a script function.
pub fn call<S: AsRef<str>>(name: &str, args: impl IntoIterator<Item = S>) -> String {
    let mut line = name.to_string();
    for a in args {
        line.push(' ');
        line.push_str(&quote(a.as_ref()));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_anything_unsafe() {
        assert_eq!(quote("/etc/x.service"), "/etc/x.service");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        assert_eq!(quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        for word in ["plain", "a b", "it's", "$(id) `id` $HOME", "*", "\\n"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }
}
