use cache_runtime::cached;

#[cached(
    ttl = "1h30m",
    key = "user:{id}",
    name = "user:profile",
    null_ttl = 60,
    jitter = 0,
    max_entries = 100_000,
    backend = "memory",
    lock = "local",
    lock_timeout = "250ms",
    crate = "cache_runtime"
)]
fn every_argument(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(ttl = "2d", null_ttl = "1m", jitter = 1.0, lock = "none")]
fn durations(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {
    assert_eq!(every_argument(1), Some(1));
    assert_eq!(every_argument_cache().name(), "user:profile");
    assert_eq!(durations(2), Some(2));
}
