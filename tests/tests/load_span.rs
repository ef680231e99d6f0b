//! Issue 15: one `cache.load` span per load, with the cache's name, backend, outcome,
//! duration and the callers that waited for it, and no key value in any span or log line
//! unless the function sets `record_keys = true`. In process; a test
//! subscriber captures every span and event of the process.
#![cfg(not(feature = "redis"))]

use cache_runtime::cached;

#[cached(ttl = 60, name = "spanned", key = "{email}")]
fn profile(email: &str) -> Result<u32, String> {
    match email {
        "broken@example.com" => Err("no such user".into()),
        other => Ok(other.len() as u32),
    }
}

#[test]
fn a_span_per_load_with_its_outcome_and_no_key() {
    tests::logs::capture();
    assert_eq!(profile("ada@example.com"), Ok(15));
    assert_eq!(profile("ada@example.com"), Ok(15)); // a hit: no load, no span
    assert!(profile("broken@example.com").is_err());
    let loads: Vec<String> = tests::logs::spans()
        .into_iter()
        .filter(|s| s.starts_with("cache.load") && s.contains("cache=spanned "))
        .collect();
    assert_eq!(loads.len(), 2, "{loads:#?}");
    assert!(loads[0].contains("outcome=\"success\"") || loads[0].contains("outcome=success"));
    assert!(loads[1].contains("error"), "{loads:#?}");
    assert!(
        loads.iter().all(|s| s.contains("duration_ms=")),
        "{loads:#?}"
    );
    let everything = tests::logs::spans().join("\n") + &tests::logs::lines().join("\n");
    assert!(
        !everything.contains("ada@example.com"),
        "a key value was recorded"
    );
    assert!(
        !everything.contains("broken@example.com"),
        "a key value was recorded"
    );
}

#[cached(ttl = 60, name = "spanned.waited")]
fn slow(n: u32) -> u32 {
    LEADER_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
    // Ends once the three other callers have missed (each is counted as arrived first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while slow_cache().stats().misses < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiters never came"
        );
        std::thread::yield_now();
    }
    n + 1
}

static LEADER_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn a_load_span_counts_the_callers_that_waited_for_it_and_names_the_backend() {
    tests::logs::capture();
    std::thread::scope(|s| {
        let leader = s.spawn(|| slow(1));
        while !LEADER_STARTED.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let waiters: Vec<_> = (0..3).map(|_| s.spawn(|| slow(1))).collect();
        assert_eq!(leader.join().unwrap(), 2);
        for w in waiters {
            assert_eq!(w.join().unwrap(), 2);
        }
    });
    let stats = slow_cache().stats();
    assert_eq!((stats.loads, stats.waits), (1, 3), "{stats:?}");
    let loads: Vec<String> = tests::logs::spans()
        .into_iter()
        .filter(|s| s.starts_with("cache.load") && s.contains("cache=spanned.waited"))
        .collect();
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert!(loads[0].contains("backend=memory"), "{loads:#?}");
    assert!(loads[0].contains("waits=3"), "{loads:#?}");
    assert!(!loads[0].contains("key="), "{loads:#?}");
}

#[cached(ttl = 60, name = "spanned.keyed", record_keys = true)]
fn keyed(user: &str, n: u32) -> u32 {
    n + user.len() as u32
}

#[test]
fn record_keys_puts_the_key_in_the_span_of_that_function_only() {
    tests::logs::capture();
    assert_eq!(keyed("grace@example.com", 7), 24);
    let loads: Vec<String> = tests::logs::spans()
        .into_iter()
        .filter(|s| s.starts_with("cache.load") && s.contains("cache=spanned.keyed"))
        .collect();
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert!(
        loads[0].contains(r#"key=("grace@example.com", 7)"#),
        "{loads:#?}"
    );
}
