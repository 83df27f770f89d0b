//! Load client for `just bench-relay` (run through `cargo bench --bench relay-load -- MODE ...`).
//!
//! Modes (all against one `host:port`, bounded in time and count):
//! - `cps ADDR THREADS SECS`: short connections (connect, 64 bytes each way, close) per second;
//! - `bulk ADDR STREAMS SECS`: MB/s read from a source backend over N parallel streams;
//! - `echo ADDR STREAMS SECS`: MB/s through an echo backend, each stream writing and
//!   reading at once (as a proxied TLS or MTProto session does), counted as read back;
//! - `mixed ADDR STREAMS SECS`: echo streams as above running while 2 threads open short
//!   connections (connect, 64 bytes each way, close): the short ones' p50 and p99 in ms,
//!   their count per second and failures, and the streams' MB/s;
//! - `latency ADDR COUNT`: p50/p99 round-trip of 64 bytes on one connection, in µs;
//! - `idle ADDR COUNT`: opens COUNT connections, checks each once, holds them until stdin closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let addr: SocketAddr = match args.get(2).and_then(|a| a.parse().ok()) {
        Some(a) => a,
        None => {
            eprintln!("usage: relay-load cps|bulk|echo|mixed|latency|idle ADDR N [SECS]");
            std::process::exit(2);
        }
    };
    let n: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
    let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);
    match mode {
        "cps" => cps(addr, n, secs),
        "bulk" => bulk(addr, n, secs),
        "echo" => echo(addr, n, secs),
        "mixed" => mixed(addr, n, secs),
        "latency" => latency(addr, n),
        "idle" => idle(addr, n),
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}

fn cps(addr: SocketAddr, threads: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    match short_connection(addr) {
                        Ok(()) => ok.fetch_add(1, Relaxed),
                        Err(_) => failed.fetch_add(1, Relaxed),
                    };
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "{:.0} {}",
        ok.load(Relaxed) as f64 / el,
        failed.load(Relaxed)
    );
}

/// One short connection: connect, 64 bytes each way, close.
fn short_connection(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(&[b'x'; 64])?;
    s.read_exact(&mut [0u8; 64])?;
    Ok(())
}

fn bulk(addr: SocketAddr, streams: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            let (stop, bytes) = (stop.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut buf = vec![0u8; 256 * 1024];
                while !stop.load(Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            bytes.fetch_add(n as u64, Relaxed);
                        }
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    print_rate(&bytes, &stop, handles, secs);
}

fn echo(addr: SocketAddr, streams: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let handles = echo_streams(addr, streams, &stop, &bytes);
    print_rate(&bytes, &stop, handles, secs);
}

/// Starts `streams` echo streams, each writing and reading at once until `stop`; what they
/// read back is counted in `bytes`.
fn echo_streams(
    addr: SocketAddr,
    streams: usize,
    stop: &Arc<AtomicBool>,
    bytes: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut handles = Vec::new();
    for _ in 0..streams {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut w = s.try_clone().unwrap();
        let (stop_w, stop_r, bytes) = (stop.clone(), stop.clone(), bytes.clone());
        handles.push(std::thread::spawn(move || {
            let buf = vec![7u8; 64 * 1024];
            while !stop_w.load(Relaxed) {
                if w.write_all(&buf).is_err() && stop_w.load(Relaxed) {
                    break;
                }
            }
            // Ends like a client that is done: its side closed, what is still on its way
            // back read to the end (below). A plain close with data in flight both ways
            // leaves every hop of the path full and the connection stuck in FIN-WAIT-1,
            // and stuck connections pile up on the backend from one run to the next.
            let _ = w.shutdown(std::net::Shutdown::Write);
        }));
        let mut r = s;
        handles.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut stopped: Option<Instant> = None;
            loop {
                if stop_r.load(Relaxed) && stopped.is_none() {
                    stopped = Some(Instant::now());
                }
                if stopped.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
                    break;
                }
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) if stopped.is_none() => {
                        bytes.fetch_add(n as u64, Relaxed);
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        }));
    }
    handles
}

/// Short connections while bulk echo streams run: does a forwarder busy moving bulk data
/// still answer a new connection quickly? Prints p50 and p99 (ms) of the short ones,
/// their rate and failures, then the streams' MB/s.
fn mixed(addr: SocketAddr, streams: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let handles = echo_streams(addr, streams, &stop, &bytes);
    std::thread::sleep(Duration::from_millis(500));
    let start = bytes.load(Relaxed);
    let t = Instant::now();
    let short_stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let shorts: Vec<_> = (0..2)
        .map(|_| {
            let (stop, failed) = (short_stop.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    match short_connection(addr) {
                        Ok(()) => samples.push(t.elapsed().as_micros() as u64),
                        Err(_) => {
                            failed.fetch_add(1, Relaxed);
                        }
                    }
                }
                samples
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    short_stop.store(true, Relaxed);
    let mut samples: Vec<u64> = shorts
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    let el = t.elapsed().as_secs_f64();
    let mbps = (bytes.load(Relaxed) - start) as f64 / el / 1e6;
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    samples.sort_unstable();
    let p = |q: f64| match samples.len() {
        0 => f64::NAN,
        n => samples[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0,
    };
    println!(
        "{:.2} {:.2} {:.0} {} {:.0}",
        p(0.50),
        p(0.99),
        samples.len() as f64 / el,
        failed.load(Relaxed),
        mbps
    );
}

/// After the streams ramped up (half a second), counts `bytes` for `secs`, stops the
/// `handles` and prints MB/s.
fn print_rate(
    bytes: &AtomicU64,
    stop: &AtomicBool,
    handles: Vec<std::thread::JoinHandle<()>>,
    secs: u64,
) {
    std::thread::sleep(Duration::from_millis(500));
    let start = bytes.load(Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let got = bytes.load(Relaxed) - start;
    let el = t.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    println!("{:.0}", got as f64 / el / 1e6);
}

fn latency(addr: SocketAddr, count: usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let msg = [b'x'; 64];
    let mut buf = [0u8; 64];
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 1000 {
        let t = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut buf).unwrap();
        if i >= 1000 {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let p = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    println!("{:.1} {:.1}", p(0.50), p(0.99));
}

fn idle(addr: SocketAddr, count: usize) {
    let mut conns = Vec::with_capacity(count);
    let mut buf = [0u8; 1];
    for _ in 0..count {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // One byte each way: the forwarder has connected upstream and relayed once.
        s.write_all(b"x").unwrap();
        s.read_exact(&mut buf).unwrap();
        conns.push(s);
    }
    println!("ready {}", conns.len());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
