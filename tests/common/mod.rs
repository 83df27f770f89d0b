//! Helpers shared by test binaries: strings biased towards what breaks file formats
//! (quotes, backslashes, `$`, `%`, braces, semicolons, newlines, NUL, DEL, the C1 range,
//! line separators, multi-byte characters), from a fixed seed that is printed.

#![allow(dead_code)]

pub const ALPHABET: &[char] = &[
    'a', 'Z', '0', ' ', '"', '\\', '\'', '$', '%', '{', '}', ';', '#', '=', '/', ':', ',', '[',
    ']', '\n', '\r', '\t', '\0', '\x07', '\x1b', '\x7f', '\u{85}', '\u{9f}', '\u{a0}', 'é', '€',
    '😀', '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '&', '<', '*', '!', '-', '?',
];

/// `count` strings of 0-40 characters from [`ALPHABET`] (xorshift, seed `seed`).
pub fn strings(seed: u64, count: usize) -> Vec<String> {
    strings_of(ALPHABET, seed, count)
}

/// `count` strings of 0-40 characters from `alphabet`.
pub fn strings_of(alphabet: &[char], seed: u64, count: usize) -> Vec<String> {
    eprintln!("strings from seed {seed}");
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|_| {
            let len = (next() % 41) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// The characters of [`ALPHABET`] a format can hold (`keep`), for strings that are all
/// written, not refused.
pub fn holdable(keep: impl Fn(char) -> bool) -> Vec<char> {
    ALPHABET.iter().copied().filter(|c| keep(*c)).collect()
}
