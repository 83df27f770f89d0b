//! Where each string value of a JSON text stands, by JSON path, so values can be replaced
//! in place and everything else of the file (order, spacing, comments of a reviewer's
//! diff) stays as it was.

/// A string value of the text: its JSON path (`$.a[0].b`, as the inventory reader names
/// paths) and its byte range, quotes included.
#[derive(Debug, PartialEq)]
pub struct Span {
    pub path: String,
    pub start: usize,
    pub end: usize,
}

/// Every string value of `text` (a valid JSON document), in order.
pub fn strings(text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    value(b, &mut i, "$", &mut out);
    out
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// The end (past the closing quote) of the string starting at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

fn value(b: &[u8], i: &mut usize, path: &str, out: &mut Vec<Span>) {
    skip_ws(b, i);
    match b.get(*i) {
        Some(b'"') => {
            let end = string_end(b, *i);
            out.push(Span {
                path: path.to_string(),
                start: *i,
                end,
            });
            *i = end;
        }
        Some(b'{') => {
            *i += 1;
            loop {
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b'}') => {
                        *i += 1;
                        return;
                    }
                    Some(b',') => *i += 1,
                    Some(b'"') => {
                        let end = string_end(b, *i);
                        let key: String = serde_json::from_slice(&b[*i..end]).unwrap_or_default();
                        *i = end;
                        skip_ws(b, i);
                        *i += 1; // the colon
                        value(b, i, &format!("{path}.{key}"), out);
                    }
                    _ => return,
                }
            }
        }
        Some(b'[') => {
            *i += 1;
            let mut n = 0;
            loop {
                skip_ws(b, i);
                match b.get(*i) {
                    Some(b']') => {
                        *i += 1;
                        return;
                    }
                    Some(b',') => *i += 1,
                    Some(_) => {
                        value(b, i, &format!("{path}[{n}]"), out);
                        n += 1;
                    }
                    None => return,
                }
            }
        }
        Some(_) => {
            // A number, true, false or null.
            while *i < b.len()
                && !matches!(b[*i], b',' | b'}' | b']')
                && !b[*i].is_ascii_whitespace()
            {
                *i += 1;
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_value_is_found_at_its_path() {
        let text = "{\"a\": [1, \"x\\\"y\", {\"k\": \"v\", \"n\": null}],\n  \"b\" : {\"c d\": \"e\"}, \"t\": true}";
        let got: Vec<(String, &str)> = strings(text)
            .into_iter()
            .map(|s| (s.path, &text[s.start..s.end]))
            .collect();
        assert_eq!(
            got,
            [
                ("$.a[1]".to_string(), "\"x\\\"y\""),
                ("$.a[2].k".to_string(), "\"v\""),
                ("$.b.c d".to_string(), "\"e\""),
            ]
        );
    }
}
