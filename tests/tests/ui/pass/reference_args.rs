use cache_runtime::cached;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Query {
    table: String,
    limit: u32,
}

#[cached]
fn by_str(name: &str, bytes: &[u8], query: &Query, owned: String) -> usize {
    name.len() + bytes.len() + query.table.len() + query.limit as usize + owned.len()
}

#[cached]
fn by_mut_ref(out: &mut Vec<u8>, n: u8) -> u8 {
    out.push(n);
    n
}

fn main() {
    let q = Query { table: "users".into(), limit: 10 };
    assert_eq!(by_str("ab", &[1, 2, 3], &q, "xyz".into()), 23);
    assert_eq!(by_str("ab", &[1, 2, 3], &q, "xyz".into()), 23);
    assert!(by_str_invalidate("ab", &[1, 2, 3], &q, "xyz".into()).is_done());
    assert_eq!(by_str_cache().stats().hits, 1);
    let mut v = vec![1];
    assert_eq!(by_mut_ref(&mut v, 2), 2);
}
