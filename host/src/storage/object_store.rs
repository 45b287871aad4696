//! A store in object storage — S3 and S3-compatible servers, Google Cloud Storage, Azure
//! Blob Storage — through the `object_store` crate, under one prefix of a bucket.
//!
//! - Objects are written with `PutMode::Create` (`If-None-Match: *`; GCS: generation 0).
//!   An object that already exists keeps its bytes and gets its modification time
//!   refreshed, so a concurrent GC sees it as young: on S3 by copying it onto itself with
//!   its metadata replaced (one request, no data sent); on GCS and Azure by reading it and
//!   writing the same bytes back. Either costs a request only for objects that already
//!   exist — rare, since core writes only the objects a commit adds.
//! - A ref's version is its ETag (plus the object's generation or version id where the
//!   server has one). A compare-and-swap writes with `PutMode::Update` (`If-Match`; GCS:
//!   `if-generation-match`) or `PutMode::Create` when the ref must not exist; a
//!   precondition failure or an existing object means the race was lost, and the ref is
//!   read again to report what it holds. S3's `409 Conflict` on racing conditional writes
//!   is retried by `object_store`.
//! - A compare-and-swap that deletes a ref sends `DELETE` with `If-Match` (GCS:
//!   `x-goog-if-generation-match`), through a URL signed by the store, because
//!   `object_store` has no conditional delete. (S3, R2 and Azure honour `If-Match` on
//!   `DELETE`; on GCS this path is untested.)
//! - Before its first write, a store checks once that the server honours conditional
//!   writes (a second create of one key must fail, an update with a wrong ETag must fail,
//!   ETags must be returned); a server that ignores them would let two writers both win a
//!   compare-and-swap, so every write is then refused with [`Error::Unsafe`]. A server
//!   that honours them on `PUT` but not on `DELETE` takes every write except deleting a
//!   ref by compare-and-swap. The first write also creates `HEAD`, so a copy of the
//!   prefix is a git repository.

use std::{fmt, sync::Arc, time::Duration};

use ::object_store::{
    Error as StoreError, GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    client::{ClientOptions, HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector},
    gcp::{GoogleCloudStorageBuilder, GoogleConfigKey},
    path::Path,
    signer::{SignedUrlOptions, Signer},
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use snapgit_core::step::{CasOutcome, CasRef, Listed, RefState, Swap};
use tokio::sync::OnceCell;

use super::{
    BoxError, Error, Limits, Object, Storage, check_delete_key, check_key, check_prefix, check_swap, parse_ref,
    ref_bytes,
};
use crate::util::token;

/// The largest ref object read; a ref is 41 or 65 bytes.
const MAX_REF_BYTES: u64 = 4096;

/// How an object store is configured: the `object_store` configuration keys (the
/// lower-cased names of its environment variables, e.g. `aws_endpoint_url`,
/// `aws_access_key_id`, `google_service_account`, `azure_storage_account_key`), and
/// whether a cloud metadata service may supply credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudOptions {
    /// `object_store` configuration, `(key, value)`; keys another cloud uses are ignored.
    pub config: Vec<(String, String)>,
    /// Let credentials come from the cloud's instance metadata service when none are
    /// configured. Off by default, so missing credentials fail at once with a message
    /// instead of waiting on a metadata endpoint that does not answer.
    pub allow_instance_credentials: bool,
    /// Bounds on reads.
    pub limits: Limits,
}

/// The environment variable that sets [`CloudOptions::allow_instance_credentials`].
pub const INSTANCE_CREDENTIALS_VAR: &str = "SNAPGIT_INSTANCE_CREDENTIALS";

impl CloudOptions {
    /// Configuration from the environment: every `AWS_*`, `GOOGLE_*` and `AZURE_*`
    /// variable (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`, …), and `SNAPGIT_INSTANCE_CREDENTIALS=1` to allow
    /// instance credentials.
    pub fn from_env() -> Self {
        let config = std::env::vars()
            .filter(|(key, _)| ["AWS_", "GOOGLE_", "AZURE_"].iter().any(|p| key.starts_with(p)))
            .map(|(key, value)| (key.to_ascii_lowercase(), value))
            .collect();
        let allow = std::env::var(INSTANCE_CREDENTIALS_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        CloudOptions {
            config,
            allow_instance_credentials: allow,
            limits: Limits::default(),
        }
    }

    /// Add one configuration entry (the key in any case: `AWS_REGION` or `aws_region`).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// The value of the first entry whose key parses as `wanted`.
    fn value<K: std::str::FromStr + PartialEq>(&self, wanted: &K) -> Option<&str> {
        self.config
            .iter()
            .find(|(key, _)| key.parse::<K>().is_ok_and(|k| k == *wanted))
            .map(|(_, value)| value.as_str())
    }

    fn has<K: std::str::FromStr + PartialEq>(&self, keys: &[K]) -> bool {
        keys.iter().any(|key| self.value(key).is_some_and(|v| !v.is_empty()))
    }

    fn flag<K: std::str::FromStr + PartialEq>(&self, key: &K) -> bool {
        self.value(key)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }
}

/// Which cloud's requests a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

/// Sends, through URLs the store signs, the requests `object_store` cannot express:
/// conditional deletes, and (S3) the copy of an object onto itself that refreshes it.
struct Signed {
    signer: Arc<dyn Signer>,
    http: HttpClient,
    cloud: Cloud,
    bucket: String,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("cloud", &self.cloud)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The outcome of the once-per-store check of conditional writes: `Err` holds why the
/// server cannot be trusted with writes, or with conditional deletes of refs.
#[derive(Debug, Clone)]
struct Verdict {
    writes: Result<(), String>,
    deletes: Result<(), String>,
}

/// A store under a prefix of a bucket.
#[derive(Debug)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    root: Path,
    location: String,
    signed: Option<Signed>,
    limits: Limits,
    verdict: OnceCell<Verdict>,
}

impl ObjectStoreStorage {
    /// Open `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`
    /// (also `s3a://`, `abfs://`, `azure://`) with this configuration. Nothing is sent
    /// until the first call.
    pub fn from_url(url: &str, options: &CloudOptions) -> Result<Self, Error> {
        let config_error = |reason: String| Error::Config { reason, source: None };
        let parsed = url::Url::parse(url).map_err(|err| Error::Config {
            reason: format!("invalid store URL {url:?}"),
            source: Some(Box::new(err)),
        })?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(config_error(format!(
                "{url:?} names no bucket (expected {}://<bucket>/<prefix>)",
                parsed.scheme()
            )));
        }
        let root = Path::from_url_path(parsed.path()).map_err(|err| Error::Config {
            reason: format!("invalid prefix in {url:?}"),
            source: Some(Box::new(err)),
        })?;
        let build_error = |err: StoreError| Error::Config {
            reason: format!("cannot open {url:?}: {err}"),
            source: Some(Box::new(err)),
        };
        let (store, signer, cloud): (Arc<dyn ObjectStore>, Arc<dyn Signer>, _) = match parsed.scheme() {
            "s3" | "s3a" => {
                use AmazonS3ConfigKey as K;
                let signed = options.has(&[K::AccessKeyId, K::WebIdentityTokenFile])
                    || options.has(&[K::ContainerCredentialsRelativeUri, K::ContainerCredentialsFullUri])
                    || options.flag(&K::SkipSignature);
                if options.has(&[K::AccessKeyId]) != options.has(&[K::SecretAccessKey]) {
                    return Err(config_error(
                        "S3 credentials are incomplete: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
                    ));
                }
                check_credentials(signed, options, "S3", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")?;
                let mut builder = AmazonS3Builder::new();
                for (key, value) in &options.config {
                    if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
                let s3 = Arc::new(builder.with_url(url).build().map_err(build_error)?);
                (s3.clone(), s3, Cloud::S3)
            }
            "gs" => {
                use GoogleConfigKey as K;
                let signed = options.has(&[
                    K::ServiceAccount,
                    K::ServiceAccountKey,
                    K::ApplicationCredentials,
                    K::BearerToken,
                ]) || options.flag(&K::SkipSignature);
                check_credentials(
                    signed,
                    options,
                    "GCS",
                    "GOOGLE_SERVICE_ACCOUNT (a key file) or GOOGLE_APPLICATION_CREDENTIALS",
                )?;
                let mut builder = GoogleCloudStorageBuilder::new();
                for (key, value) in &options.config {
                    if let Ok(key) = key.parse::<GoogleConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
                let gcs = Arc::new(builder.with_url(url).build().map_err(build_error)?);
                (gcs.clone(), gcs, Cloud::Gcs)
            }
            "az" | "abfs" | "abfss" | "azure" => {
                use AzureConfigKey as K;
                let signed = options.has(&[
                    K::AccessKey,
                    K::SasKey,
                    K::Token,
                    K::ClientSecret,
                    K::FederatedTokenFile,
                ]) || options.flag(&K::UseAzureCli)
                    || options.flag(&K::UseEmulator)
                    || options.flag(&K::SkipSignature);
                check_credentials(
                    signed,
                    options,
                    "Azure",
                    "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or a SAS token)",
                )?;
                let mut builder = MicrosoftAzureBuilder::new();
                for (key, value) in &options.config {
                    if let Ok(key) = key.parse::<AzureConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
                let azure = Arc::new(builder.with_url(url).build().map_err(build_error)?);
                (azure.clone(), azure, Cloud::Azure)
            }
            other => {
                return Err(config_error(format!(
                    "unknown store scheme {other:?} in {url:?} (expected s3://, gs://, az://, file:// or memory:)"
                )));
            }
        };
        let allow_http =
            options.config.iter().any(|(key, value)| {
                key.ends_with("allow_http") && (value == "1" || value.eq_ignore_ascii_case("true"))
            }) || options
                .config
                .iter()
                .any(|(key, value)| key.ends_with("use_emulator") && value == "true");
        let http = ReqwestConnector::default()
            .connect(&ClientOptions::new().with_allow_http(allow_http))
            .map_err(build_error)?;
        let mut storage = Self::new(store, root, url.trim_end_matches('/').to_owned(), options.limits);
        storage.signed = Some(Signed {
            signer,
            http,
            cloud,
            bucket: parsed.host_str().unwrap_or_default().to_owned(),
        });
        Ok(storage)
    }

    /// A store under `root` of any `object_store` implementation. It has no conditional
    /// delete: a compare-and-swap that deletes a ref fails with [`Error::Unsupported`].
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, location: String, limits: Limits) -> Self {
        ObjectStoreStorage {
            store,
            root,
            location,
            signed: None,
            limits,
            verdict: OnceCell::new(),
        }
    }

    fn path(&self, key: &str) -> Result<Path, Error> {
        check_key(key)?;
        self.path_unchecked(key)
    }

    /// The path of a key already checked (a delete may name a lock file).
    fn path_unchecked(&self, key: &str) -> Result<Path, Error> {
        let mut path = self.root.clone();
        for part in key.split('/') {
            let part = ::object_store::path::PathPart::parse(part).map_err(|_| Error::InvalidKey {
                key: key.to_owned(),
                reason: "it has a component object storage does not allow",
            })?;
            path = path.clone().join(part);
        }
        Ok(path)
    }

    /// The key of `path` inside the store.
    fn key_of(&self, path: &Path) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.root)?.map(|p| p.as_ref().to_owned()).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    fn backend(&self, op: &'static str, key: &str) -> impl FnOnce(StoreError) -> Error {
        let (key, location) = (key.to_owned(), self.location.clone());
        move |source| Error::Backend {
            op,
            key,
            location,
            source: Box::new(source),
        }
    }

    /// Check once that the server honours conditional writes, and create `HEAD`; refuse
    /// to write if it does not. Runs before the first write; call it to fail early.
    pub async fn check_conditional_writes(&self) -> Result<(), Error> {
        let verdict = self.verdict.get_or_try_init(|| self.probe()).await?;
        verdict.writes.clone().map_err(|reason| self.unsafe_store(reason))
    }

    /// Like [`Self::check_conditional_writes`], and also that conditional deletes are
    /// honoured. A server that ignores them still takes every other write; only deleting
    /// a ref by compare-and-swap (deleting a branch) is refused.
    async fn check_conditional_deletes(&self) -> Result<(), Error> {
        self.check_conditional_writes().await?;
        let verdict = self.verdict.get_or_try_init(|| self.probe()).await?;
        verdict.deletes.clone().map_err(|reason| self.unsafe_store(reason))
    }

    fn unsafe_store(&self, reason: String) -> Error {
        Error::Unsafe {
            location: self.location.clone(),
            reason,
        }
    }

    async fn probe(&self) -> Result<Verdict, Error> {
        let key = format!("snapgit-probe-{}", token());
        let path = self.path(&key)?;
        let put = |mode: PutMode, bytes: &'static [u8]| {
            self.store.put_opts(
                &path,
                PutPayload::from_static(bytes),
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            )
        };
        let first = match put(PutMode::Create, b"1").await {
            Ok(first) => first,
            Err(StoreError::NotImplemented { .. }) => {
                let reason = "conditional writes are turned off for this store (aws_conditional_put)".to_owned();
                return Ok(Verdict {
                    writes: Err(reason.clone()),
                    deletes: Err(reason),
                });
            }
            Err(err) => return Err(self.backend("check conditional writes with", &key)(err)),
        };
        let verdict = self.judge(&path, &key, first.e_tag.is_some(), put).await;
        let cleanup = self.store.delete_stream(stream::iter([Ok(path.clone())]).boxed());
        let _ = cleanup.collect::<Vec<_>>().await;
        let verdict = verdict?;
        if verdict.writes.is_ok() {
            let head = self.path("HEAD")?;
            let payload = PutPayload::from_static(snapgit_core::store::HEAD.as_bytes());
            match self.store.put_opts(&head, payload, PutMode::Create.into()).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(err) => return Err(self.backend("create", "HEAD")(err)),
            }
        }
        Ok(verdict)
    }

    async fn judge<F, Fut>(&self, path: &Path, key: &str, has_etag: bool, put: F) -> Result<Verdict, Error>
    where
        F: Fn(PutMode, &'static [u8]) -> Fut,
        Fut: Future<Output = Result<::object_store::PutResult, StoreError>>,
    {
        let refuse = |reason: &str| {
            Ok(Verdict {
                writes: Err(reason.to_owned()),
                deletes: Err(reason.to_owned()),
            })
        };
        if !has_etag {
            return refuse("the server returns no ETag, so a ref cannot be compared and swapped");
        }
        match put(PutMode::Create, b"2").await {
            Ok(_) => return refuse("the server ignores If-None-Match: a second create of one key succeeded"),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(self.backend("check conditional writes with", key)(err)),
        }
        let wrong = UpdateVersion {
            e_tag: Some("\"snapgit-probe-mismatch\"".into()),
            version: Some("1".into()),
        };
        match put(PutMode::Update(wrong), b"3").await {
            Ok(_) => return refuse("the server ignores If-Match: an update with a wrong ETag succeeded"),
            Err(StoreError::Precondition { .. }) => {}
            Err(err) => return Err(self.backend("check conditional writes with", key)(err)),
        }
        let stored = self.get(key).await?;
        if stored.as_deref() != Some(b"1".as_slice()) {
            return refuse("a refused conditional write changed the object anyway");
        }
        let deletes = match &self.signed {
            Some(signed) => {
                let wrong = Version {
                    e_tag: Some("\"snapgit-probe-mismatch\"".into()),
                    version: Some("1".into()),
                };
                if self.delete_if(signed, path, key, &wrong).await? {
                    Err("the server ignores If-Match on DELETE: a delete with a wrong ETag succeeded".to_owned())
                } else {
                    Ok(())
                }
            }
            // Checked when a delete is asked for: without signed requests there is none.
            None => Ok(()),
        };
        Ok(Verdict {
            writes: Ok(()),
            deletes,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key)?;
        let result = match self.store.get_opts(&path, GetOptions::default()).await {
            Ok(result) => result,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.backend("get", key)(err)),
        };
        let limit = self.limits.max_read_bytes;
        if result.meta.size > limit {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: result.meta.size,
                limit,
            });
        }
        let bytes = result.bytes().await.map_err(self.backend("get", key))?;
        Ok(Some(Vec::from(bytes)))
    }

    /// `len` bytes of `key` from `start` with one ranged GET, `None` if it is absent.
    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key)?;
        let limit = self.limits.max_read_bytes;
        if len > limit {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: len,
                limit,
            });
        }
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let options = GetOptions {
            range: Some(object_store::GetRange::Bounded(start..start.saturating_add(len))),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&path, options).await {
            Ok(result) => result,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.backend("get", key)(err)),
        };
        let bytes = result.bytes().await.map_err(self.backend("get", key))?;
        Ok(Some(Vec::from(bytes)))
    }

    async fn put(&self, object: Object) -> Result<(), Error> {
        let path = self.path(&object.key)?;
        // Create; if it exists, refresh it; if it vanished meanwhile (a GC), create again.
        for _ in 0..3 {
            let payload = PutPayload::from_bytes(object.bytes.clone());
            match self.store.put_opts(&path, payload, PutMode::Create.into()).await {
                Ok(_) => return Ok(()),
                Err(StoreError::AlreadyExists { .. }) => {
                    if self.refresh(&path, &object.key).await? {
                        return Ok(());
                    }
                }
                Err(err) => return Err(self.backend("put", &object.key)(err)),
            }
        }
        Err(self.request_error(
            "put",
            &object.key,
            "the object kept existing and vanishing while being written".into(),
        ))
    }

    async fn read(&self, key: &str) -> Result<Option<RefState>, Error> {
        let path = self.path(key)?;
        let result = match self.store.get_opts(&path, GetOptions::default()).await {
            Ok(result) => result,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.backend("read ref", key)(err)),
        };
        if result.meta.size > MAX_REF_BYTES {
            return Err(Error::CorruptRef {
                key: key.to_owned(),
                reason: format!("it is larger than {MAX_REF_BYTES} bytes"),
            });
        }
        let version = Version {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(self.backend("read ref", key))?;
        Ok(Some(RefState {
            value: parse_ref(key, &bytes)?,
            version: version.encode(),
        }))
    }

    /// The bytes and version of a small file (`shallow`, `config`), `None` if absent.
    async fn read_file(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, Error> {
        let path = self.path(key)?;
        let result = match self.store.get_opts(&path, GetOptions::default()).await {
            Ok(result) => result,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.backend("read", key)(err)),
        };
        if result.meta.size > self.limits.max_read_bytes {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: result.meta.size,
                limit: self.limits.max_read_bytes,
            });
        }
        let version = Version {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(self.backend("read", key))?;
        Ok(Some((bytes.to_vec(), version)))
    }

    async fn lost(&self, key: &str) -> Result<CasOutcome, Error> {
        Ok(CasOutcome::Lost {
            current: self.read(key).await?,
        })
    }

    /// Send `DELETE` with the precondition `expected`: `true` if it deleted, `false` if
    /// the precondition failed or the object is gone.
    async fn delete_if(&self, signed: &Signed, path: &Path, key: &str, expected: &Version) -> Result<bool, Error> {
        let (name, value) = match signed.cloud {
            Cloud::S3 | Cloud::Azure => (http::header::IF_MATCH, expected.e_tag.clone()),
            Cloud::Gcs => (
                http::HeaderName::from_static("x-goog-if-generation-match"),
                expected.version.clone(),
            ),
        };
        // Without the version the precondition needs, nothing can match.
        let Some(value) = value else { return Ok(false) };
        let value = http::HeaderValue::from_str(&value).map_err(|_| Error::CorruptRef {
            key: key.to_owned(),
            reason: "its version cannot be sent in a header".into(),
        })?;
        let (status, body) = self
            .send_signed(
                signed,
                http::Method::DELETE,
                path,
                vec![(name, value)],
                key,
                "delete ref",
            )
            .await?;
        match status.as_u16() {
            200..=299 => Ok(true),
            404 | 412 => Ok(false),
            _ => Err(self.answered("delete ref", key, status, &body)),
        }
    }

    /// Set the modification time of an existing object to now: on S3 a copy onto itself
    /// that replaces its metadata (S3 refuses a copy that changes nothing), elsewhere a
    /// rewrite of the bytes it holds. `false` if the object is gone.
    async fn refresh(&self, path: &Path, key: &str) -> Result<bool, Error> {
        if let Some(signed) = self.signed.as_ref().filter(|s| s.cloud == Cloud::S3) {
            let source = format!("/{}/{}", signed.bucket, encode_path(path.as_ref()));
            let headers = vec![
                (
                    http::HeaderName::from_static("x-amz-copy-source"),
                    header(&source, key)?,
                ),
                (
                    http::HeaderName::from_static("x-amz-metadata-directive"),
                    http::HeaderValue::from_static("REPLACE"),
                ),
            ];
            let (status, body) = self
                .send_signed(signed, http::Method::PUT, path, headers, key, "refresh")
                .await?;
            return match status.as_u16() {
                // A copy can fail after its 200 is sent: the error is then in the body.
                200..=299 if !body.windows(7).any(|w| w == b"<Error>") => Ok(true),
                404 => Ok(false),
                _ => Err(self.answered("refresh", key, status, &body)),
            };
        }
        let Some(bytes) = self.get(key).await? else {
            return Ok(false);
        };
        self.store
            .put_opts(path, PutPayload::from(bytes), PutMode::Overwrite.into())
            .await
            .map_err(self.backend("refresh", key))?;
        Ok(true)
    }

    /// Send a request with no body to a URL the store signs for `path`, with `headers`
    /// (signed where the store's signatures can cover headers); retry S3's `409 Conflict`
    /// of racing conditional requests, as `object_store` does for puts.
    async fn send_signed(
        &self,
        signed: &Signed,
        method: http::Method,
        path: &Path,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        key: &str,
        op: &'static str,
    ) -> Result<(http::StatusCode, Bytes), Error> {
        let expires = Duration::from_secs(300);
        let options = headers.iter().fold(SignedUrlOptions::new(), |options, (name, value)| {
            options.with_signed_header(name.clone(), value.clone())
        });
        let url = match signed
            .signer
            .signed_url_opts(method.clone(), path, expires, &options)
            .await
        {
            Ok(url) => url,
            // Signatures that cannot cover headers (Azure SAS): send them unsigned.
            Err(_) => signed
                .signer
                .signed_url(method.clone(), path, expires)
                .await
                .map_err(self.backend("sign a request for", key))?,
        };
        let mut attempt = 0u32;
        loop {
            let mut request = http::Request::builder().method(method.clone()).uri(url.as_str());
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let request = request
                .body(HttpRequestBody::empty())
                .map_err(|err| self.request_error(op, key, Box::new(err)))?;
            let response = signed
                .http
                .execute(request)
                .await
                .map_err(|err| self.request_error(op, key, Box::new(err)))?;
            let status = response.status();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|err| self.request_error(op, key, Box::new(err)))?;
            if status == http::StatusCode::CONFLICT && attempt < 4 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                attempt += 1;
                continue;
            }
            return Ok((status, body));
        }
    }

    fn answered(&self, op: &'static str, key: &str, status: http::StatusCode, body: &[u8]) -> Error {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        self.request_error(op, key, format!("the server answered {status}: {text}").into())
    }

    fn request_error(&self, op: &'static str, key: &str, source: BoxError) -> Error {
        Error::Backend {
            op,
            key: key.to_owned(),
            location: self.location.clone(),
            source,
        }
    }
}

fn header(value: &str, key: &str) -> Result<http::HeaderValue, Error> {
    http::HeaderValue::from_str(value).map_err(|_| Error::InvalidKey {
        key: key.to_owned(),
        reason: "it cannot be sent in a header",
    })
}

/// Percent-encode a path for `x-amz-copy-source`, keeping `/` and unreserved characters.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn check_credentials(signed: bool, options: &CloudOptions, cloud: &str, what: &str) -> Result<(), Error> {
    if signed || options.allow_instance_credentials {
        return Ok(());
    }
    Err(Error::Config {
        reason: format!(
            "no {cloud} credentials: set {what}; to take them from the instance metadata service, \
             set {INSTANCE_CREDENTIALS_VAR}=1"
        ),
        source: None,
    })
}

/// A ref's version: what `object_store` needs for a conditional update.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    e_tag: Option<String>,
    version: Option<String>,
}

impl Version {
    /// The ETag alone when there is no object version (S3 without versioning, Azure);
    /// otherwise `v1:<length of ETag>:<ETag><version>`, which no ETag (always quoted)
    /// can look like.
    fn encode(&self) -> String {
        match (&self.e_tag, &self.version) {
            (Some(e_tag), None) => e_tag.clone(),
            (e_tag, version) => {
                let e_tag = e_tag.as_deref().unwrap_or("");
                format!("v1:{}:{e_tag}{}", e_tag.len(), version.as_deref().unwrap_or(""))
            }
        }
    }

    fn decode(text: &str) -> Version {
        let parsed = text.strip_prefix("v1:").and_then(|rest| {
            let (len, rest) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let (e_tag, version) = (rest.get(..len)?, rest.get(len..)?);
            Some(Version {
                e_tag: (!e_tag.is_empty()).then(|| e_tag.to_owned()),
                version: (!version.is_empty()).then(|| version.to_owned()),
            })
        });
        parsed.unwrap_or_else(|| Version {
            e_tag: (!text.is_empty()).then(|| text.to_owned()),
            version: None,
        })
    }

    fn from_put(result: &::object_store::PutResult) -> Version {
        Version {
            e_tag: result.e_tag.clone(),
            version: result.version.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Storage for ObjectStoreStorage {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    async fn get_ranges(&self, ranges: &[(String, u64, u64)]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut out = Vec::with_capacity(ranges.len());
        for (key, start, len) in ranges {
            out.push(self.get_range(key, *start, *len).await?);
        }
        Ok(out)
    }

    async fn put_many(&self, objects: Vec<Object>) -> Result<(), Error> {
        for object in &objects {
            check_key(&object.key)?;
        }
        self.check_conditional_writes().await?;
        for object in objects {
            self.put(object).await?;
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        check_prefix(prefix)?;
        // object_store lists by whole path components: list the folder, then filter.
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        let base = if folder.is_empty() {
            self.root.clone()
        } else {
            self.path(folder)?
        };
        let listed: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(self.backend("list", prefix))?;
        let mut out: Vec<Listed> = listed
            .into_iter()
            .filter_map(|meta| {
                let key = self.key_of(&meta.location)?;
                key.starts_with(prefix).then(|| Listed {
                    key,
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        let paths = keys
            .iter()
            .map(|key| check_delete_key(key).and_then(|()| self.path_unchecked(key)))
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            return Ok(());
        }
        self.check_conditional_writes().await?;
        let results: Vec<_> = self
            .store
            .delete_stream(stream::iter(paths.into_iter().map(Ok)).boxed())
            .collect()
            .await;
        for result in results {
            match result {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(err) => return Err(self.backend("delete", keys.first().map_or("", String::as_str))(err)),
            }
        }
        Ok(())
    }

    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        self.read(key).await
    }

    async fn swap(&self, swap: &Swap) -> Result<bool, Error> {
        let path = self.path(&swap.key)?;
        check_swap(swap, || self.location.clone())?;
        self.check_conditional_writes().await?;
        let key = swap.key.as_str();
        let current = self.read_file(key).await?;
        let (bytes, version) = match current {
            Some((bytes, version)) => (Some(bytes), Some(version)),
            None => (None, None),
        };
        if bytes != swap.expected {
            return Ok(false);
        }
        match (&swap.new, version) {
            (Some(new), version) => {
                let mode = match version {
                    None => PutMode::Create,
                    Some(version) if version.e_tag.is_none() && version.version.is_none() => return Ok(false),
                    Some(version) => PutMode::Update(UpdateVersion {
                        e_tag: version.e_tag,
                        version: version.version,
                    }),
                };
                let payload = PutPayload::from_bytes(Bytes::from(new.clone()));
                match self.store.put_opts(&path, payload, mode.into()).await {
                    Ok(_) => Ok(true),
                    Err(
                        StoreError::AlreadyExists { .. }
                        | StoreError::Precondition { .. }
                        | StoreError::NotFound { .. },
                    ) => Ok(false),
                    Err(err) => Err(self.backend("replace", key)(err)),
                }
            }
            (None, None) => Ok(true),
            (None, Some(version)) => {
                self.check_conditional_deletes().await?;
                let Some(signed) = &self.signed else {
                    return Err(Error::Unsupported {
                        location: self.location.clone(),
                        what: "conditional deletes",
                    });
                };
                self.delete_if(signed, &path, key, &version).await
            }
        }
    }

    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, Error> {
        let path = self.path(&cas.key)?;
        self.check_conditional_writes().await?;
        let key = cas.key.as_str();
        match (&cas.expected, cas.new) {
            (expected, Some(new)) => {
                let mode = match expected {
                    None => PutMode::Create,
                    Some(state) => {
                        let version = Version::decode(&state.version);
                        if version.e_tag.is_none() && version.version.is_none() {
                            return self.lost(key).await;
                        }
                        PutMode::Update(UpdateVersion {
                            e_tag: version.e_tag,
                            version: version.version,
                        })
                    }
                };
                let payload = PutPayload::from_bytes(Bytes::from(ref_bytes(&new)));
                match self.store.put_opts(&path, payload, mode.into()).await {
                    Ok(result) => Ok(CasOutcome::Won {
                        version: Version::from_put(&result).encode(),
                    }),
                    Err(StoreError::AlreadyExists { .. } | StoreError::Precondition { .. }) => self.lost(key).await,
                    // A GCS update of a missing object.
                    Err(StoreError::NotFound { .. }) => self.lost(key).await,
                    Err(err) => Err(self.backend("compare-and-swap", key)(err)),
                }
            }
            (None, None) => match self.read(key).await? {
                None => Ok(CasOutcome::Won { version: String::new() }),
                current => Ok(CasOutcome::Lost { current }),
            },
            (Some(state), None) => {
                self.check_conditional_deletes().await?;
                let Some(signed) = &self.signed else {
                    return Err(Error::Unsupported {
                        location: self.location.clone(),
                        what: "conditional deletes of refs",
                    });
                };
                if self
                    .delete_if(signed, &path, key, &Version::decode(&state.version))
                    .await?
                {
                    Ok(CasOutcome::Won { version: String::new() })
                } else {
                    self.lost(key).await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip() {
        for version in [
            Version {
                e_tag: Some("\"abc\"".into()),
                version: None,
            },
            Version {
                e_tag: Some("\"a:b\"".into()),
                version: Some("1700000000000000".into()),
            },
            Version {
                e_tag: None,
                version: Some("7".into()),
            },
        ] {
            assert_eq!(Version::decode(&version.encode()), version);
        }
        assert_eq!(Version::encode(&Version::decode("\"plain\"")), "\"plain\"");
    }
}
