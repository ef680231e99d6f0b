use cache_runtime::cached;

struct Product {
    id: u32,
    category: Category,
}

struct Category;

// A field that does not exist, and a field that is not `Display`.
#[cached(ttl = 60, key = "{p.id}", tags = ["product:{p.nope}"])]
fn missing_field(p: &Product) -> u32 {
    p.id
}

#[cached(ttl = 60, key = "{p.id}", tags = ["category:{p.category}"])]
fn field_not_display(p: &Product) -> u32 {
    let _ = &p.category;
    p.id
}

// More than 16 tags.
#[cached(
    ttl = 60,
    tags = [
        "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t13", "t14",
        "t15", "t16", "t17"
    ]
)]
fn too_many(id: u32) -> u32 {
    id
}

struct Tenant {
    id: u32,
}

impl Tenant {
    // `{self}` alone: a receiver is not a tag part.
    #[cached(ttl = 60, key = "{self.id}:{n}", tags = ["tenant:{self}"])]
    fn page(&self, n: u32) -> u32 {
        self.id + n
    }
}

fn main() {}
