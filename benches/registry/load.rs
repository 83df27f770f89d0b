//! Load client of `just bench-registry` (benches/registry/hosts.sh): CLIENTS threads, each
//! with one keep-alive HTTP/1.1 connection, send REQUESTS requests each and time them.
//!
//! Usage: registry-load ADDR TOKEN METHOD PATH CLIENTS REQUESTS
//! Prints: `req/s p50_ms p99_ms failures`.

mod client;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 {
        eprintln!("usage: registry-load ADDR TOKEN METHOD PATH CLIENTS REQUESTS");
        std::process::exit(2);
    }
    let (clients, per): (usize, usize) = (a[4].parse().unwrap(), a[5].parse().unwrap());
    let load = client::run(&a[0], &client::request(&a[2], &a[3], &a[1]), clients, per);
    println!(
        "{:.0} {:.2} {:.2} {}",
        load.per_second, load.p50_ms, load.p99_ms, load.failures
    );
}
