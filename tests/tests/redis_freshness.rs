//! Issue 11 across processes on Redis: two `freshness-worker` processes of 16 tasks each meet
//! one expired entry. Within `stale`, every call answers at once and one revalidation runs in
//! total; within `stale_if_error` with the loader returning `Err`, panicking, or hanging past
//! `load_timeout`, every call answers with the kept value and one load runs in total (the
//! throttle holds the others off, in both processes); with XFetch a hot entry near its expiry
//! is refreshed once in total, before it expires.
#![cfg(feature = "redis")]

use std::process::Command;
use std::time::{Duration, Instant};

use redis::Commands;

/// The summed counts of the workers, and every value they answered.
#[derive(Default, Debug)]
struct Totals {
    values: Vec<u64>,
    slow: u64,
    loads: u64,
    refreshes: u64,
    stale_hits: u64,
    stale_if_error_hits: u64,
}

/// Writes `{prefix}{name}:7` as an entry holding 70 that expired `expired_ms` ago (or, wrapped
/// below zero, expires in that many ms), starts two workers in `mode`, and sums what they
/// print.
fn run(url: &str, mode: &str, name: &str, expired_ms: u64) -> Totals {
    let prefix = format!("fresh{}{mode}:", std::process::id());
    let mut con = tests::redis_server::raw(url);
    // `expired_ms` below zero (wrapped): still fresh for that long.
    let fresh_until = tests::envelope::now_ms().wrapping_sub(expired_ms);
    let entry = tests::envelope::build_timed("u64", &70u64, fresh_until);
    let () = con.set_ex(format!("{prefix}{name}:7"), entry, 600).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_freshness-worker"))
                .args([url, prefix.as_str(), mode, "16"])
                .env(
                    "CACHE_REDIS_URL",
                    tests::redis_server::library_url().expect("a server"),
                )
                .envs(tests::redis_server::child_env())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    let give_up = Instant::now() + Duration::from_secs(60);
    while con.get::<_, Option<u32>>(format!("{prefix}ready")).unwrap() != Some(2) {
        assert!(Instant::now() < give_up, "the workers did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let () = con.set(format!("{prefix}go"), 1).unwrap();
    let mut totals = Totals::default();
    for worker in workers {
        let out = worker.wait_with_output().expect("the worker ran");
        assert!(out.status.success(), "a worker failed: {out:?}");
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let field = |name: &str| -> String {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        };
        let number = |name: &str| field(name).parse::<u64>().unwrap();
        totals.values.extend(
            field("values")
                .split(',')
                .map(|v| v.parse::<u64>().unwrap()),
        );
        totals.slow += number("slow");
        totals.loads += number("loads");
        totals.refreshes += number("refreshes");
        totals.stale_hits += number("stale_hits");
        totals.stale_if_error_hits += number("stale_if_error_hits");
    }
    eprintln!("{mode}: {totals:?}");
    totals
}

#[test]
fn issue_11_two_processes_revalidate_a_stale_key_once() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    let t = run(url, "stale", "fresh_stale", 100);
    assert_eq!(t.values.len(), 32);
    assert!(t.values.iter().all(|&v| v == 70), "{:?}", t.values);
    assert_eq!(t.slow, 0, "a stale caller waited for the revalidation");
    assert_eq!(t.stale_hits, 32);
    assert_eq!(t.refreshes, 1, "one revalidation across the processes");
    assert_eq!(t.loads, 1);
}

#[test]
fn issue_11_two_processes_answer_a_failing_key_with_the_kept_value_and_load_once() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    let t = run(url, "error", "fresh_error", 10_000);
    assert_eq!(t.values.len(), 32);
    assert!(
        t.values.iter().all(|&v| v == 70),
        "an error reached a caller: {:?}",
        t.values
    );
    assert_eq!(
        t.loads, 1,
        "one load across the processes within the throttle"
    );
}

#[test]
fn issue_11_two_processes_answer_a_panicking_key_with_the_kept_value_and_load_once() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    let t = run(url, "panic", "fresh_panic", 10_000);
    assert_eq!(t.values.len(), 32);
    assert!(t.values.iter().all(|&v| v == 70), "{:?}", t.values);
    assert_eq!(
        t.loads, 1,
        "one load across the processes within the throttle"
    );
    assert_eq!(t.stale_if_error_hits, 32);
}

#[test]
fn issue_11_two_processes_answer_a_hanging_key_at_load_timeout_and_the_late_load_stores() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    let t = run(url, "hang", "fresh_hang", 10_000);
    assert_eq!(t.values.len(), 32);
    assert!(t.values.iter().all(|&v| v == 70), "{:?}", t.values);
    assert_eq!(t.slow, 0, "a caller waited past load_timeout");
    assert_eq!(
        t.loads, 1,
        "one load across the processes (it went on, and stored 99)"
    );
}

#[test]
fn issue_11_two_processes_refresh_a_hot_key_early_once() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    // Fresh for 250 ms more; δ = 7 ms and β = 10 reach 2.8 s: the refresh fires at once.
    let t = run(url, "early", "fresh_early", 0u64.wrapping_sub(250));
    assert!(
        t.values.iter().all(|&v| v == 70 || v == 99),
        "{:?}",
        t.values
    );
    assert_eq!(
        t.slow, 0,
        "a caller waited for a load: the key expired first"
    );
    assert_eq!(t.refreshes, 1, "one early refresh across the processes");
    assert_eq!(t.loads, 1);
}
