//! A value that is not serde on `backend = "redis"`, inside a `Result`: one error, at the
//! return type, naming the user's type. Its notes still name the runtime's internals
//! (`bounds::RedisValue`, `__private::redis_cache`), since the check is the `RedisValue` bound
//! of `redis_cache` in `cache-runtime`; this golden changes when that check moves.
use cache_runtime::cached;

#[derive(Clone)]
struct Report(u32);

#[cached(ttl = 60, backend = "redis")]
fn report(day: u32) -> Result<Report, String> {
    Ok(Report(day))
}

fn main() {}
