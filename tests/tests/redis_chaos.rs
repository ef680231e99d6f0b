//! Issue 22: four processes (two reading, two writing and reading) call a plain Redis, a tiered
//! and a tagged function on 200 skewed keys for 40 s while the test breaks their Redis every
//! 2 s, in turn: `SIGSTOP` for 600 ms, `CLIENT PAUSE` (all commands) for 600 ms, `CLIENT KILL`
//! of every client, and a kill and restart of the server (its data lost). Afterwards every
//! read is checked against the invalidations made before it started:
//! - a process never reads a value older than an invalidation it made itself (`Done` or
//!   `Pending`), whatever the faults;
//! - a read in another process is older than an acknowledged (`Done`) invalidation at most for
//!   the documented bounds: `fallback_ttl` (1 s here) for plain and tagged functions, `l1_ttl`
//!   (1 s) for the tiered one, plus 300 ms (the tracking and log connections' own bound).
//!
//! The workers must end without an error (their exit status), and read and write throughout.
#![cfg(feature = "redis")]

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// The documented bound, in ms, for a read in another process (see the module docs).
const BOUND_MS: u64 = 1_000 + 300;
const SECONDS: u64 = 40;

struct Ack {
    process: usize,
    version: u32,
    at: u64,
    done: bool,
}

struct Read {
    process: usize,
    f: String,
    key: u32,
    version: u32,
    start: u64,
}

fn parse(
    process: usize,
    text: &str,
    acks: &mut HashMap<(String, u32), Vec<Ack>>,
    reads: &mut Vec<Read>,
) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["A", f, key, version, at, done] => {
                acks.entry(((*f).to_owned(), key.parse().expect("key")))
                    .or_default()
                    .push(Ack {
                        process,
                        version: version.parse().expect("version"),
                        at: at.parse().expect("at"),
                        done: *done == "1",
                    });
            }
            ["R", f, key, version, start, _end] => reads.push(Read {
                process,
                f: (*f).to_owned(),
                key: key.parse().expect("key"),
                version: version.parse().expect("version"),
                start: start.parse().expect("start"),
            }),
            _ => panic!("a line the worker does not write: {line}"),
        }
    }
}

#[test]
fn issue_22_reads_stay_within_their_bounds_under_faults() {
    let Some(server) = tests::redis_server::own_server("the chaos test") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cache-runtime-chaos-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("db")).expect("a data dir");
    let roles = ["read", "read", "write0", "write1"];
    let prefix = format!("chaos{}:", std::process::id());
    let workers: Vec<_> = roles
        .iter()
        .enumerate()
        .map(|(n, role)| {
            // Each process logs to `<role>.log`: the readers get their own names.
            let role = if *role == "read" {
                format!("read{n}")
            } else {
                (*role).to_owned()
            };
            let child = Command::new(env!("CARGO_BIN_EXE_chaos-worker"))
                .args([
                    server.url.as_str(),
                    prefix.as_str(),
                    dir.to_str().expect("a path"),
                    if role.starts_with("read") {
                        "read"
                    } else {
                        role.as_str()
                    },
                    &SECONDS.to_string(),
                ])
                .env("CHAOS_LOG_NAME", &role)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("a worker starts");
            (role, child)
        })
        .collect();
    // The faults, in turn, every 2 s, until the workers' time is up.
    let started = Instant::now();
    let mut faults = 0;
    // 16 faults (four of each), one every 2 s, while the workers run.
    while faults < 16 && started.elapsed() < Duration::from_secs(SECONDS - 3) {
        std::thread::sleep(Duration::from_secs(2));
        let mut raw = tests::redis_server::raw(&server.url);
        match faults % 4 {
            0 => {
                let pid = tests::redis_server::pid(&mut raw);
                tests::redis_server::signal(pid, "-STOP");
                std::thread::sleep(Duration::from_millis(600));
                tests::redis_server::signal(pid, "-CONT");
            }
            1 => {
                let _: () = redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(600)
                    .arg("ALL")
                    .query(&mut raw)
                    .expect("PAUSE");
            }
            2 => {
                let _: redis::Value = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("normal")
                    .arg("SKIPME")
                    .arg("yes")
                    .query(&mut raw)
                    .expect("KILL");
            }
            _ => {
                drop(raw);
                server.stop();
                std::thread::sleep(Duration::from_millis(300));
                server.restart().expect("redis-server starts again");
            }
        }
        faults += 1;
    }
    let mut acks = HashMap::new();
    let mut reads = Vec::new();
    for (n, (role, mut child)) in workers.into_iter().enumerate() {
        let status = child.wait().expect("a worker ends");
        assert!(status.success(), "worker {role} failed: {status}");
        for part in ["", ".t1", ".t2"] {
            let log =
                std::fs::read_to_string(dir.join(format!("{role}{part}.log"))).expect("its logs");
            parse(n, &log, &mut acks, &mut reads);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (mut own, mut beyond, mut late) = (0, 0, 0);
    for read in &reads {
        let Some(of_key) = acks.get(&(read.f.clone(), read.key)) else {
            continue;
        };
        for ack in of_key
            .iter()
            .filter(|a| a.version > read.version && a.at < read.start)
        {
            if ack.process == read.process {
                own += 1;
            } else if ack.done && ack.at + BOUND_MS < read.start {
                beyond += 1;
            } else if ack.done {
                late += 1;
            }
        }
    }
    let changes: usize = acks.values().map(Vec::len).sum();
    println!(
        "chaos: {} reads, {changes} invalidations, {faults} faults; older than the process's \
         own invalidation: {own}; older than another's beyond the bound: {beyond}; within it: {late}",
        reads.len()
    );
    assert!(faults >= 12, "the faults ran: {faults}");
    assert!(
        reads.len() > 10_000 && changes > 1_000,
        "the workers worked"
    );
    assert_eq!(own, 0, "a read older than the process's own invalidation");
    assert_eq!(
        beyond, 0,
        "a read older than another process's invalidation beyond the bound"
    );
}
