//! The keep-alive HTTP/1.1 load client of `just bench-registry` (`load.rs`), also used by
//! the registry's real-host test: CLIENTS threads, each with one connection (a new one
//! after an error), send N requests each and time them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// What a load run measured.
pub struct Load {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests answered with anything but 2xx, or not answered.
    pub failures: usize,
}

/// A request with an empty body and a bearer token.
pub fn request(method: &str, path: &str, token: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One request and its answer on a kept-alive connection; the status line.
fn exchange(
    w: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    request: &str,
) -> std::io::Result<String> {
    w.write_all(request.as_bytes())?;
    let mut status = String::new();
    r.read_line(&mut status)?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(status)
}

/// `n` requests on one connection (a new one after an error); (latencies, failures).
fn one_client(addr: &str, request: &str, n: usize) -> (Vec<f64>, usize) {
    let mut lat = Vec::with_capacity(n);
    let mut fails = 0;
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    for _ in 0..n {
        let t = Instant::now();
        if conn.is_none() {
            conn = TcpStream::connect(addr).ok().and_then(|s| {
                s.set_nodelay(true).ok()?;
                Some((s.try_clone().ok()?, BufReader::new(s)))
            });
        }
        let Some((w, r)) = conn.as_mut() else {
            fails += 1;
            continue;
        };
        match exchange(w, r, request) {
            Ok(status) if status.starts_with("HTTP/1.1 2") => {}
            Ok(_) => fails += 1,
            Err(_) => {
                fails += 1;
                conn = None;
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (lat, fails)
}

/// `clients` threads send `request` to `addr` `per` times each.
pub fn run(addr: &str, request: &str, clients: usize, per: usize) -> Load {
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, request) = (addr.to_string(), request.to_string());
            std::thread::spawn(move || one_client(&addr, &request, per))
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    for t in threads {
        let (lat, f) = t.join().expect("a load thread panicked");
        all.extend(lat);
        failures += f;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(|x, y| x.total_cmp(y));
    let at = |q: usize| {
        all.get((all.len() * q / 100).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Load {
        per_second: all.len() as f64 / secs,
        p50_ms: at(50),
        p99_ms: at(99),
        failures,
    }
}
