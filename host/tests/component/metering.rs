//! The metering wrapper the benchmark counts requests with (`host/tests/support/metered.rs`).

use std::sync::Arc;

use snapgit_host::storage::{Object, Storage, memory::MemoryStorage};

use crate::metered::*;

fn object(n: u8) -> Object {
    Object {
        key: format!("objects/{n:02x}/{}", "0".repeat(38)),
        bytes: vec![n].into(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn counts_one_request_per_key_and_per_page() {
    let store = Metered::new(Arc::new(MemoryStorage::new()));
    let objects: Vec<Object> = (0..=255).map(object).collect();
    let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
    store.put_many(objects).await.unwrap();
    assert_eq!(store.get_many(&keys[..3]).await.unwrap().len(), 3);
    store.list("objects/").await.unwrap();
    store.delete(&keys[..2]).await.unwrap();
    store.read_ref("refs/heads/main").await.unwrap();
    let counts = store.counts();
    assert_eq!(
        counts,
        Counts {
            get: 3,
            put: 256,
            list: 1,
            read_ref: 1,
            cas: 0,
            delete: 2
        }
    );
    assert_eq!(counts.total(), 263);
    assert_eq!(counts.to_string(), "263 (1 list, 1 ref, 3 get, 256 put, 2 delete)");
    assert_eq!(Counts::default().to_string(), "0");
    assert_eq!(counts.since(&counts).total(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_listing_is_several_pages() {
    let store = Metered::new(Arc::new(MemoryStorage::new()));
    let objects: Vec<Object> = (0..2001)
        .map(|n| Object {
            key: format!("objects/aa/{n:038x}"),
            bytes: vec![1].into(),
        })
        .collect();
    store.put_many(objects).await.unwrap();
    let before = store.counts();
    assert_eq!(store.list("objects/").await.unwrap().len(), 2001);
    assert_eq!(store.counts().since(&before).list, 3);
    assert_eq!(store.list("nothing/").await.unwrap().len(), 0);
    assert_eq!(store.counts().since(&before).list, 4);
}
