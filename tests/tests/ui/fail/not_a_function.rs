use cache_runtime::cached;

#[cached(ttl = 60)]
struct Config;

fn main() {}
