//! Load client of `just bench-registry` (benches/registry/hosts.sh): CLIENTS threads, each
//! with one keep-alive HTTP/1.1 connection, send REQUESTS requests each and time them.
//!
//! Usage: registry-load ADDR TOKEN METHOD PATH CLIENTS REQUESTS
//! Prints: `req/s p50_ms p99_ms failures`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

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

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 {
        eprintln!("usage: registry-load ADDR TOKEN METHOD PATH CLIENTS REQUESTS");
        std::process::exit(2);
    }
    let (clients, per): (usize, usize) = (a[4].parse().unwrap(), a[5].parse().unwrap());
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        a[2], a[3], a[1]
    );
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, request) = (a[0].clone(), request.clone());
            std::thread::spawn(move || one_client(&addr, &request, per))
        })
        .collect();
    let mut all = Vec::new();
    let mut fails = 0;
    for t in threads {
        let (lat, f) = t.join().unwrap();
        all.extend(lat);
        fails += f;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let at = |q: usize| all[(all.len() * q / 100).min(all.len() - 1)];
    println!(
        "{:.0} {:.2} {:.2} {fails}",
        all.len() as f64 / secs,
        at(50),
        at(99)
    );
}
