//! The checked values of the `monitoring` section: durations as Prometheus writes them,
//! receiver URLs, SMTP servers, bot tokens.

use std::fmt;

use crate::inventory::DomainName;

/// A duration Prometheus and Alertmanager accept: a number and one unit (`30s`, `5m`,
/// `2h`, `1d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    amount: u32,
    unit: char,
}

impl Duration {
    /// `amount` seconds.
    pub const fn secs(amount: u32) -> Duration {
        Duration { amount, unit: 's' }
    }

    /// `amount` minutes.
    pub const fn mins(amount: u32) -> Duration {
        Duration { amount, unit: 'm' }
    }

    /// Parses `s`, or says which rule it broke.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let rule = "is not a duration; expected a number and a unit (s, m, h or d), e.g. \"5m\"";
        let unit = s.chars().last().ok_or(rule)?;
        let digits = &s[..s.len() - unit.len_utf8()];
        if !"smhd".contains(unit)
            || digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(rule.into());
        }
        let amount: u32 = digits.parse().map_err(|_| rule)?;
        if u64::from(amount) * Self::factor(unit) > 366 * 86_400 {
            return Err("is longer than a year".into());
        }
        Ok(Duration { amount, unit })
    }

    fn factor(unit: char) -> u64 {
        match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 1,
        }
    }

    /// In seconds.
    pub fn as_secs(self) -> u64 {
        u64::from(self.amount) * Self::factor(self.unit)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit)
    }
}

/// An `http://` or `https://` URL with a host, and no space, quote, backslash or control
/// character anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Parses `s`, or says which rule it broke (without repeating it: it may hold a token).
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let Some(rest) = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
        else {
            return Err("does not start with http:// or https://".into());
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            return Err("has no host after the scheme".into());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&()*+,;=%".contains(c);
        if !s.chars().all(allowed) {
            return Err("has a character a URL cannot hold as is (a space, quote, backslash or control character); percent-encode it".into());
        }
        Ok(HttpUrl(s.to_string()))
    }
}

impl HttpUrl {
    /// The stand-in of a webhook URL that was not read (its shape was checked instead).
    pub fn unread(placeholder: String) -> HttpUrl {
        HttpUrl(placeholder)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SMTP server as Alertmanager takes it: `host:port`.
pub fn smarthost(s: &str) -> Result<String, String> {
    let rule = "is not host:port; expected the SMTP server, e.g. \"smtp.example.com:587\"";
    let (host, port) = s.rsplit_once(':').ok_or(rule)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = DomainName::parse(host).is_ok() || host.parse::<std::net::IpAddr>().is_ok();
    if port_ok && host_ok {
        Ok(s.to_string())
    } else {
        Err(rule.into())
    }
}

/// What is wrong with a Telegram bot token, if anything: digits, a colon, then at least 30
/// letters, digits, `_` or `-` (as BotFather gives it).
pub fn bot_token_problem(s: &str) -> Option<String> {
    let ok = s.split_once(':').is_some_and(|(id, key)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && key.len() >= 30
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    (!ok).then(|| {
        "is not a bot token; expected what BotFather gives, e.g. 123456:ABC-DEF… (digits, a colon, 30+ letters)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit_and_print_as_prometheus_reads_them() {
        assert_eq!(Duration::parse("5m").unwrap().to_string(), "5m");
        assert_eq!(Duration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(Duration::parse("2d").unwrap().as_secs(), 172_800);
        for bad in ["", "m", "5", "5 m", "5min", "-5m", "1h30m", "400d", "5m\n"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_without_a_host_or_with_characters_that_would_end_a_string_are_refused() {
        assert!(HttpUrl::parse("https://hooks.example.com/T0/B1?x=1").is_ok());
        assert!(HttpUrl::parse("http://10.0.0.1:9999/hook").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://a b",
            "https://x/\"y",
            "https://x/\\y",
            "https://x/\ny",
            "https://x/'y",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn smtp_servers_are_host_and_port() {
        assert!(smarthost("smtp.example.com:587").is_ok());
        assert!(smarthost("10.0.0.1:25").is_ok());
        for bad in [
            "smtp.example.com",
            "smtp.example.com:0",
            ":25",
            "a b:25",
            "x:y",
        ] {
            assert!(smarthost(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bot_tokens_look_like_botfathers() {
        assert!(bot_token_problem("123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789").is_none());
        assert!(bot_token_problem("123456:short").is_some());
        assert!(bot_token_problem("abc:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789").is_some());
        assert!(bot_token_problem("123456:ABCdefGHIjklMNOpqrSTUvwxYZ01234567\"9").is_some());
    }
}
