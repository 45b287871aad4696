//! Opening stores from URLs, and the configuration errors of the cloud backends. Nothing
//! here talks to a server.

use snapgit_host::storage::{
    self, Error, Options,
    object_store::{CloudOptions, ObjectStoreStorage},
};

fn config_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(err @ Error::Config { .. }) => err.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn s3_keys() -> CloudOptions {
    CloudOptions::default()
        .with("aws_access_key_id", "AKIDEXAMPLE")
        .with("aws_secret_access_key", "secret")
        .with("aws_region", "eu-west-1")
}

#[test]
fn urls_pick_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default();
    assert_eq!(storage::open("memory:", &options).unwrap().location(), "memory:");
    let plain = dir.path().join("plain");
    let store = storage::open(plain.to_str().unwrap(), &options).unwrap();
    assert_eq!(store.location(), plain.display().to_string());
    assert!(plain.join("HEAD").is_file());
    let url = format!("file://{}", dir.path().join("by-url").display());
    let store = storage::open(&url, &options).unwrap();
    assert!(store.location().ends_with("by-url"));

    let options = Options {
        cloud: s3_keys(),
        ..Options::default()
    };
    let store = storage::open("s3://bucket/org/agent-1/", &options).unwrap();
    assert_eq!(store.location(), "s3://bucket/org/agent-1");
}

#[test]
fn bad_urls_are_explained() {
    let options = Options {
        cloud: s3_keys(),
        ..Options::default()
    };
    let message = config_error(storage::open("s3://", &options).map(drop));
    assert!(message.contains("names no bucket"), "{message}");
    let message = config_error(storage::open("ftp://host/x", &options).map(drop));
    assert!(message.contains("unknown store scheme \"ftp\""), "{message}");
    let message = config_error(storage::open("file://server/share", &options).map(drop));
    assert!(message.contains("does not name a local folder"), "{message}");
}

#[test]
fn missing_credentials_are_explained() {
    let none = CloudOptions::default();
    let message = config_error(ObjectStoreStorage::from_url("s3://bucket/p", &none));
    assert!(
        message.contains("no S3 credentials") && message.contains("AWS_ACCESS_KEY_ID"),
        "{message}"
    );
    assert!(message.contains("SNAPGIT_INSTANCE_CREDENTIALS=1"), "{message}");
    let message = config_error(ObjectStoreStorage::from_url("gs://bucket/p", &none));
    assert!(message.contains("no GCS credentials"), "{message}");
    let message = config_error(ObjectStoreStorage::from_url("az://container/p", &none));
    assert!(message.contains("no Azure credentials"), "{message}");

    let half = CloudOptions::default().with("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    let message = config_error(ObjectStoreStorage::from_url("s3://bucket/p", &half));
    assert!(message.contains("incomplete"), "{message}");

    // Opting in to the metadata service builds (nothing is sent yet).
    let instance = CloudOptions {
        allow_instance_credentials: true,
        ..CloudOptions::default()
    };
    ObjectStoreStorage::from_url("s3://bucket/p", &instance).unwrap();
}

#[test]
fn gcs_and_azure_build() {
    let gcs = CloudOptions::default().with("google_skip_signature", "true");
    let store = ObjectStoreStorage::from_url("gs://bucket/agents/a1", &gcs).unwrap();
    assert_eq!(snapgit_host::Storage::location(&store), "gs://bucket/agents/a1");

    let azure = CloudOptions::default()
        .with("azure_storage_account_name", "account")
        .with("azure_storage_account_key", "c2VjcmV0");
    let store = ObjectStoreStorage::from_url("az://container/agents", &azure).unwrap();
    assert_eq!(snapgit_host::Storage::location(&store), "az://container/agents");

    // Azure needs its account.
    let no_account = CloudOptions::default().with("azure_storage_account_key", "c2VjcmV0");
    let message = config_error(ObjectStoreStorage::from_url("az://container/agents", &no_account));
    assert!(message.contains("cannot open"), "{message}");
}

#[test]
fn environment_names_become_configuration_keys() {
    // CloudOptions::from_env lower-cases names; the same keys work given directly.
    let options = CloudOptions::default()
        .with("aws_endpoint_url", "http://127.0.0.1:9")
        .with("aws_allow_http", "true")
        .with("aws_access_key_id", "a")
        .with("aws_secret_access_key", "b");
    ObjectStoreStorage::from_url("s3://bucket", &options).unwrap();
}

/// A server that takes every conditional write as a plain overwrite, as some
/// S3-compatible servers do.
#[derive(Debug)]
struct Careless(object_store::memory::InMemory);

impl std::fmt::Display for Careless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("careless")
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for Careless {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        mut opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        opts.mode = object_store::PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        self.0.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

fn object_store_over(store: impl object_store::ObjectStore) -> ObjectStoreStorage {
    ObjectStoreStorage::new(
        std::sync::Arc::new(store),
        object_store::path::Path::from("prefix"),
        "test://bucket/prefix".into(),
        storage::Limits::default(),
    )
}

#[tokio::test]
async fn a_server_that_ignores_conditional_writes_is_refused() {
    use snapgit_host::Storage;
    let store = object_store_over(Careless(object_store::memory::InMemory::new()));
    let object = storage::Object {
        key: "objects/ab/cdef".into(),
        bytes: b"x".to_vec().into(),
    };
    match store.put_many(vec![object.clone()]).await {
        Err(Error::Unsafe { reason, .. }) => assert!(reason.contains("If-None-Match"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let cas = snapgit_core::step::CasRef {
        key: "refs/heads/main".into(),
        expected: None,
        new: Some(crate::support::id(1)),
    };
    assert!(matches!(store.cas_ref(&cas).await, Err(Error::Unsafe { .. })));
    assert!(matches!(
        store.delete(&["objects/ab/cdef".into()]).await,
        Err(Error::Unsafe { .. })
    ));
    // Reads still work, and nothing was left behind by the check.
    assert_eq!(store.list("").await.unwrap(), vec![]);

    // The same store honouring conditions is accepted, and its refs swap.
    let honest = object_store_over(object_store::memory::InMemory::new());
    honest.put_many(vec![object]).await.unwrap();
    match honest.cas_ref(&cas).await.unwrap() {
        snapgit_core::step::CasOutcome::Won { version } => assert!(!version.is_empty()),
        lost => panic!("{lost:?}"),
    }
    assert!(matches!(
        honest.cas_ref(&cas).await.unwrap(),
        snapgit_core::step::CasOutcome::Lost { current: Some(_) }
    ));
    // Without signed requests there is no conditional delete: refused, not faked.
    let delete = snapgit_core::step::CasRef {
        expected: honest.read_ref("refs/heads/main").await.unwrap(),
        new: None,
        ..cas
    };
    assert!(matches!(honest.cas_ref(&delete).await, Err(Error::Unsupported { .. })));
}

/// An `s3://` URL with the usual `AWS_*` variables (as `scripts/services.sh` exports
/// them) opens the test server, and commits land there.
#[tokio::test]
async fn s3_opens_from_the_environment() {
    let Some(services) = crate::support::services() else {
        return;
    };
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ALLOW_HTTP",
    ] {
        assert!(
            std::env::var(name).is_ok(),
            "SNAPGIT_SERVICES=1 but {name} is not set; run host/scripts/test.sh, or start the servers with \
             `eval \"$(scripts/services.sh start)\"`"
        );
    }
    let url = format!("s3://{}/env-{}", services.s3_bucket, crate::support::unique());
    let store = storage::open(&url, &Options::from_env()).unwrap();
    let mut cache = snapgit_core::ObjectCache::new(snapgit_core::HashKind::Sha1);
    let files = vec![snapgit_core::commit::Change::put("memory.md", "remember\n")];
    let mut op =
        snapgit_core::repo::RepoOp::create_repo(&cache, "agent", "main", files, crate::support::me(), "create")
            .unwrap();
    snapgit_host::driver::run(&mut op, &mut cache, store.as_ref(), None)
        .await
        .unwrap();
    let head = store.read_ref("refs/namespaces/agent/refs/heads/main").await.unwrap();
    assert!(head.is_some());
}
