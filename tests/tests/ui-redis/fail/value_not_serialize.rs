use cache_runtime::cached;

#[derive(Clone)]
struct Report(u32);

#[cached(ttl = 60)]
fn report(day: u32) -> Report {
    Report(day)
}

fn main() {}
