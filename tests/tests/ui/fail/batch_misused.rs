use cache_runtime::cached;
use std::collections::HashMap;

#[cached(batch)]
fn not_a_slice(id: u64) -> HashMap<u64, String> {
    HashMap::from([(id, String::new())])
}

#[cached(batch)]
fn not_a_map(ids: &[u64]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[cached(batch, key = "{ids}", tags = ["users"])]
fn with_a_key(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}

struct Repo;

impl Repo {
    #[cached(batch)]
    fn method(&self, ids: &[u64]) -> HashMap<u64, String> {
        ids.iter().map(|&id| (id, String::new())).collect()
    }
}

fn main() {}

#[cached(batch)]
unsafe fn not_safe(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}

#[cached(batch)]
fn mutable(ids: &mut [u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}

#[cached(batch)]
fn borrowed_keys(ids: &[&'static str]) -> HashMap<&'static str, u64> {
    ids.iter().map(|&id| (id, 1)).collect()
}

#[cached(batch, null_ttl = 0)]
fn null_ttl_on_plain(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}

#[cached(batch = true)]
fn with_a_value(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}

#[cached(batch, lock = "distributed")]
fn distributed_without_redis(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|&id| (id, String::new())).collect()
}
