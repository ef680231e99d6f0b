use cache_runtime::cached;

/// Neither `Serialize` nor `Deserialize`: fine for a function kept in process.
#[derive(Clone, Debug, PartialEq)]
struct Local(u32);

#[cached(backend = "memory")]
fn local(x: u32) -> Local {
    Local(x)
}

/// A template renders its placeholders with `Display`: the key needs no serde either.
#[derive(Clone, Hash, PartialEq, Eq)]
struct Id(u32);

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cached(ttl = 60, key = "id:{id}")]
fn on_redis(id: Id) -> Vec<u32> {
    vec![id.0]
}

fn main() {
    // Port 1: nothing listens there, so this program sends nothing anywhere; calls are answered
    // through the in-process fallback.
    cache_runtime::Config::builder().redis_url("redis://127.0.0.1:1").init().unwrap();
    assert_eq!(local(1), Local(1));
    assert_eq!(local_cache().len(), 1);
    assert_eq!(on_redis(Id(2)), vec![2]);
}
