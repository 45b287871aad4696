//! Loose objects the host inflates for the guest: a sound one reads as stored, and a
//! damaged one is refused with the error native core gives for it, whatever the damage.

use std::sync::Arc;

use snapgit_core::{
    HashKind, ObjectCache,
    api::Request,
    commit::Change,
    error::{Classify, Code},
    object, read,
};
use snapgit_host::{
    driver,
    runtime::{Config, Io, core_code},
    storage::{Object, Storage, memory::MemoryStorage},
};

use crate::{create_repo, runtime};

fn zlib(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(raw).expect("compressed");
    encoder.finish().expect("compressed")
}

#[tokio::test]
async fn a_damaged_loose_object_is_refused_as_native_core_refuses_it() {
    let text = b"remember this\n";
    let id = object::blob_id(HashKind::Sha1, text).expect("an id");
    let key = object::loose_key(&id);
    for cache_bytes in [Config::default().object_cache_bytes, 0] {
        let config = || Config {
            object_cache_bytes: cache_bytes,
            ..Config::default()
        };
        let storage = Arc::new(MemoryStorage::new());
        let io = Io::new(storage.clone());
        let (commit, _) = create_repo(
            &runtime(config()),
            &io,
            vec![Change::put("notes.md", "remember this\n")],
        )
        .await;
        let read_file = Request::ReadFile {
            commit,
            path: "notes.md".into(),
        };
        let sound: read::File = runtime(config()).call(&io, read_file.clone()).await.unwrap();
        assert_eq!(sound.data, text);
        let stored = storage.get_many(std::slice::from_ref(&key)).await.unwrap()[0]
            .clone()
            .expect("the blob is stored");
        let mut flipped = stored.clone();
        let at = flipped.len() - 2;
        flipped[at] ^= 0x40;
        let damages = [
            ("cut short", stored[..stored.len() - 3].to_vec()),
            ("a flipped byte", flipped),
            ("another blob's stream", zlib(b"blob 5\0other")),
            ("a header that lies", zlib(b"blob 99\0remember this\n")),
            ("uncompressed, another blob", b"blob 5\0other".to_vec()),
        ];
        for (damage, bytes) in damages {
            storage.delete(std::slice::from_ref(&key)).await.unwrap();
            storage
                .put_many(vec![Object {
                    key: key.clone(),
                    bytes: bytes.into(),
                }])
                .await
                .unwrap();
            // A fresh runtime: its cache has not seen the sound copy.
            let err = runtime(config())
                .call::<read::File>(&io, read_file.clone())
                .await
                .unwrap_err();
            let mut op = read::ReadFile::new(commit, "notes.md").unwrap();
            let native = driver::run(&mut op, &mut ObjectCache::new(HashKind::Sha1), storage.as_ref(), None)
                .await
                .unwrap_err();
            assert_eq!(
                err.code().map(core_code),
                Some(native.code()),
                "{damage}: {err} / {native}"
            );
            assert_eq!(native.code(), Code::Corrupt, "{damage}: {native}");
            assert!(err.to_string().contains(&id.to_string()), "{damage}: {err}");
        }
    }
}
