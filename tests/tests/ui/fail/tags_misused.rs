use cache_runtime::cached;

// Not a list, an empty list, a tag that is not a string, an empty and a duplicate tag.
#[cached(ttl = 60, tags = "catalog")]
fn not_a_list(id: u32) -> u32 {
    id
}

#[cached(ttl = 60, tags = [])]
fn empty_list(id: u32) -> u32 {
    id
}

#[cached(ttl = 60, tags = ["catalog", 7, "", "catalog"])]
fn bad_items(id: u32) -> u32 {
    id
}

// Placeholders are checked like the key's.
#[cached(ttl = 60, tags = ["product:{idd}", "user:{self.tenant}", "x:{id", "y:{}"])]
fn bad_placeholders(id: u32) -> u32 {
    id
}

struct NoDisplay;

// A placeholder renders with `Display`.
#[cached(ttl = 60, key = "{id}", tags = ["thing:{thing}"])]
fn not_display(id: u32, thing: &NoDisplay) -> u32 {
    let _ = thing;
    id
}

fn main() {}
