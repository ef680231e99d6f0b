use cache_runtime::cached;
use std::time::Duration;

#[derive(Clone)]
struct Token {
    expires_in_s: u64,
}

// `ttl_fn` receives the stored value, inside `Ok`: not the `Result`.
fn life(token: &Result<Token, String>) -> Duration {
    Duration::from_secs(token.as_ref().map_or(0, |t| t.expires_in_s))
}

#[cached(ttl = 60, ttl_fn = life)]
fn token(user: u32) -> Result<Token, String> {
    Ok(Token {
        expires_in_s: u64::from(user),
    })
}

#[cached(ttl = 60, ttl_fn = "life")]
fn quoted(user: u32) -> u32 {
    user
}

fn main() {}
