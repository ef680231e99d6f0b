use cache_runtime::cached;

#[cached(ttl = 60, backend = "tiered", l1_ttl = "5s", key = "{id}")]
fn tiered(id: u32) -> u32 {
    id
}

#[cached(ttl = "10m", backend = "tiered", stale = 30, stale_if_error = 600)]
async fn tiered_async(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {
    let _ = (tiered, tiered_async);
}
