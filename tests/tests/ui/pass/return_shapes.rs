use cache_runtime::cached;

#[derive(Debug)]
struct DbError;

#[cached]
fn res(x: u32) -> Result<u32, DbError> {
    if x == 0 { Err(DbError) } else { Ok(x) }
}

#[cached]
fn io_res(x: u32) -> std::io::Result<u32> {
    Ok(x)
}

#[cached(null_ttl = "30s")]
fn opt(x: u32) -> Option<u32> {
    (x > 0).then_some(x)
}

#[cached]
fn res_opt(x: u32) -> Result<Option<String>, DbError> {
    Ok((x > 0).then(|| x.to_string()))
}

#[cached]
fn boxed_error(x: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(x)
}

fn main() {
    assert!(res(0).is_err());
    assert_eq!(res(1).unwrap(), 1);
    assert_eq!(io_res(2).unwrap(), 2);
    assert_eq!(opt(0), None);
    assert_eq!(res_opt(3).unwrap(), Some("3".into()));
    assert_eq!(boxed_error(4).unwrap(), 4);
}
