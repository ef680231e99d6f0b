//! Issue 15: one `cache.load` span per load, with the cache's name, the outcome and the
//! duration, and no key value in any span or log line by default. In process; a test
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
        .filter(|s| s.starts_with("cache.load") && s.contains("cache=spanned"))
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
