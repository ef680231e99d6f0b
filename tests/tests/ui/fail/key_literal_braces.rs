use cache_runtime::cached;

// Literal braces in a key's text or name would become a Redis Cluster hash tag.
#[cached(key = "{{literal}}:{id}")]
fn in_template(id: u32) -> u32 {
    id
}

#[cached(name = "users{eu}", key = "{id}")]
fn in_name(id: u32) -> u32 {
    id
}

fn main() {}
