use cache_runtime::cached;

struct Repo {
    tenant: String,
    calls: u32,
}

impl Repo {
    #[cached]
    fn by_ref(&self, id: u32) -> u32 {
        id + self.tenant.len() as u32
    }

    #[cached]
    fn by_mut(&mut self, id: u32) -> u32 {
        self.calls += 1;
        id
    }

    #[cached(key = "{self.tenant}:{id}")]
    pub fn keyed_by_self(&self, id: u32) -> String {
        format!("{}/{id}", self.tenant)
    }

    #[cached]
    async fn async_ref(&self, id: u32) -> u32 {
        id
    }

    #[cached]
    async fn async_mut(&mut self, id: u32) -> u32 {
        self.calls += 1;
        id
    }
}

fn main() {
    let mut repo = Repo { tenant: "t".into(), calls: 0 };
    assert_eq!(repo.by_ref(1), 2);
    assert_eq!(repo.by_mut(1), 1);
    assert_eq!(repo.by_mut(1), 1);
    assert_eq!(repo.calls, 1);
    assert_eq!(repo.keyed_by_self(3), "t/3");
    assert!(repo.keyed_by_self_invalidate(3).is_done());
    assert!(Repo::by_ref_invalidate(1).is_done());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        assert_eq!(repo.async_ref(1).await, 1);
        assert_eq!(repo.async_mut(1).await, 1);
        assert_eq!(repo.async_mut_refresh(1).await, 1);
    });
    assert_eq!(repo.calls, 3);
    assert!(Repo::by_ref_cache().name().ends_with("Repo::by_ref"));
}
