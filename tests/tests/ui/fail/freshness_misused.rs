use cache_runtime::cached;

// Every freshness argument acts around an expiry: without `ttl`, each is an error.
#[cached(stale = "30s", stale_if_error = "10m", early_refresh = 1.0)]
fn no_ttl(id: u32) -> u32 {
    id
}

// `load_timeout` needs a value kept past expiry to answer with.
#[cached(ttl = 60, load_timeout = "200ms")]
fn nothing_to_answer_with(id: u32) -> u32 {
    id
}

// Zero windows, a bad duration, a negative or non-numeric β.
#[cached(ttl = 60, stale = 0, stale_if_error = "ten minutes", early_refresh = -1.0)]
fn bad_values(id: u32) -> u32 {
    id
}

#[cached(ttl = 60, stale = "1m", early_refresh = "soon")]
fn beta_not_a_number(id: u32) -> u32 {
    id
}

fn main() {}
