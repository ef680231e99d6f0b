//! Stampede protection across processes: 4 processes x 16 tasks on one cold key cause one
//! load. Each process is the `stampede-worker` binary; they start together when the test sets
//! a "go" key, and each prints its own counts.
#![cfg(feature = "redis")]

use std::process::Command;

use redis::Commands;

#[test]
fn four_processes_of_sixteen_tasks_on_a_cold_key_cause_one_load() {
    let Some(url) = tests::redis_server::url() else {
        return;
    };
    let prefix = format!("stampede{}:", std::process::id());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_stampede-worker"))
                .args([url, prefix.as_str(), "16"])
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
    // Start them together once every worker is waiting.
    let mut con = tests::redis_server::raw(url);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while con.get::<_, Option<u32>>(format!("{prefix}ready")).unwrap() != Some(4) {
        assert!(
            std::time::Instant::now() < give_up,
            "the workers did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let () = con.set(format!("{prefix}go"), 1).unwrap();
    let (mut loads, mut waits, mut answers) = (0, 0, 0);
    for worker in workers {
        let out = worker.wait_with_output().expect("the worker ran");
        assert!(out.status.success(), "a worker failed: {out:?}");
        let line = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> String {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        };
        loads += field("loads").parse::<u64>().unwrap();
        waits += field("waits").parse::<u64>().unwrap();
        let values = field("values");
        assert!(
            values.split(',').all(|v| v == "70"),
            "wrong values: {values}"
        );
        answers += values.split(',').count();
    }
    eprintln!("4 processes x 16 tasks: {loads} load(s), {waits} waits, {answers} answers");
    assert_eq!(answers, 64);
    assert_eq!(loads, 1, "more than one load across processes");
}
