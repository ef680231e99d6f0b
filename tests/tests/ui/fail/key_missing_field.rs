use cache_runtime::cached;

struct Req { user: String }

#[cached(key = "{req.usr}")]
fn f(req: &Req) -> usize { req.user.len() }

fn main() {}
