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
