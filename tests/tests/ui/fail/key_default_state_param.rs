use cache_runtime::cached;

struct AppState {
    pool: Vec<u8>,
}

// Issue 8: without `key`, `state` is part of the key; the error says to name `{id}`.
#[cached]
async fn product(state: &AppState, id: i64) -> Option<String> {
    state.pool.get(id as usize).map(|b| b.to_string())
}

fn main() {}
