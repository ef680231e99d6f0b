use cache_runtime::{cached, invalidate_tag};

pub struct Product {
    pub id: u64,
    pub category: String,
}

// The classic case: a product, its category's listing and the catalog, dropped together.
#[cached(ttl = 600, key = "{p.id}", tags = ["catalog", "product:{p.id}", "category:{p.category}"])]
fn product_page(p: &Product) -> String {
    format!("{} in {}", p.id, p.category)
}

#[cached(ttl = 600, key = "{category}", tags = ["catalog", "category:{category}"])]
fn category_listing(category: &str) -> Vec<u64> {
    vec![category.len() as u64]
}

struct Tenant {
    name: String,
}

impl Tenant {
    #[cached(ttl = 60, key = "{self.name}:{page}", tags = ["tenant:{self.name}", "page:{page}"])]
    fn page(&self, page: u32) -> String {
        format!("{}#{page}", self.name)
    }
}

#[cached(ttl = 60, tags = ["async:{id}"])]
async fn fetch(id: u32) -> Result<u32, String> {
    Ok(id)
}

fn main() {
    let p = Product {
        id: 1,
        category: "tea".into(),
    };
    assert_eq!(product_page(&p), "1 in tea");
    assert_eq!(category_listing("tea"), vec![3]);
    let _ = invalidate_tag("category:tea");
    let t = Tenant { name: "a".into() };
    assert_eq!(t.page(2), "a#2");
    let _ = fetch;
}
