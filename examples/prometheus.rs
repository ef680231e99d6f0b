//! The caches' figures in Prometheus: `metrics-exporter-prometheus` as the `metrics` recorder,
//! a `/metrics` endpoint on a loopback port that exports every cache at once before it renders,
//! and a scrape of it after some calls, printed.
//!
//! Run it: `cargo run --example prometheus --features metrics`. No server needed.

#![allow(clippy::print_stdout, reason = "an example program prints its results")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use cache_runtime::cached;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A lookup (2 ms) that fails for unknown users and finds no one for id 0.
#[cached(ttl = 60, name = "users")]
fn user(id: u32) -> Result<Option<String>, String> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    match id {
        0 => Ok(None),
        1..=100 => Ok(Some(format!("user {id}"))),
        _ => Err(format!("no shard for {id}")),
    }
}

/// Answers each `GET /metrics` on `listener` with the figures of every cache.
fn serve(listener: TcpListener, prometheus: PrometheusHandle) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request_line = String::new();
        if BufReader::new(&stream)
            .read_line(&mut request_line)
            .is_err()
        {
            continue;
        }
        let (status, body) = if request_line.starts_with("GET /metrics ") {
            // The library also exports every 5 s; a scrape wants the figures of now.
            cache_runtime::export_metrics();
            ("200 OK", prometheus.render())
        } else {
            ("404 Not Found", String::new())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// What a scraper reads from `GET /metrics`.
fn scrape(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.to_owned()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Load durations as Prometheus histograms (without buckets the exporter writes summaries).
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            cache_runtime::DURATION_BUCKETS,
        )?
        .install_recorder()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || serve(listener, prometheus));

    // Hits, misses, a cached null and errors.
    for id in [1, 1, 1, 2, 2, 0, 0, 7, 500, 500] {
        let _ = user(id);
    }
    let users = user_cache();
    println!(
        "users: hit ratio {:.2}, {} entries, backend {}",
        users.hit_ratio().unwrap_or(0.0),
        users.len(),
        users.backend()
    );

    println!(
        "GET http://127.0.0.1:{port}/metrics (the cache_* families, the load durations' \
         buckets up to 10 ms):"
    );
    for line in scrape(port)?.lines() {
        let bucket = line.contains("_bucket{");
        let small = [
            "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01\"",
        ];
        let wanted = line.starts_with("cache_")
            || line.starts_with("# HELP cache_")
            || line.starts_with("# TYPE cache_");
        if wanted && (!bucket || small.iter().any(|le| line.contains(&format!("le=\"{le}")))) {
            println!("{line}");
        }
    }
    Ok(())
}
