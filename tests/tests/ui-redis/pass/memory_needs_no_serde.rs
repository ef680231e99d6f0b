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
    assert_eq!(local(1), Local(1));
    assert_eq!(local_cache().len(), 1);
    // Whether or not a Redis answers on the default URL, the call is answered.
    assert_eq!(on_redis(Id(2)), vec![2]);
}
