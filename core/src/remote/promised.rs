//! Objects a partial fetch left out, fetched from the promisor remote when a read needs
//! them, as git fetches them lazily.
//!
//! A store that took a partial fetch (`filter`, see [`client`](super::client)) names the
//! remote in its `config` (`remote.<name>.promisor`). When an operation that reads
//! contents ([`Operation::fetches_promised`](crate::step::Operation::fetches_promised))
//! asks for objects that are neither loose nor packed, [`Packed`](crate::pack::Packed)
//! reads that config once and, if it names promisor remotes, asks the first for exactly
//! those objects, in one request, as git's lazy fetch does: `want` lines, no haves, the
//! remote's filter (a wanted object is always sent). The pack is indexed and every
//! object checked as any fetched pack is, stored with a `.promisor` marker, and the
//! objects wanted are handed to the operation. What no remote gives stays missing, and
//! the operation reports it.

use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, Object},
    pack::ingest,
    remote::{
        Limits,
        client::{self, Remote},
        v2,
    },
    step::{Answer, Step, Stored},
};

/// The largest pack of promised objects taken.
const MAX_PROMISED_BYTES: u64 = 1 << 30;

#[derive(Debug)]
enum Stage {
    Config,
    Fetch,
    Write,
    Done,
}

/// Fetching the objects one `Get` found missing: see the [module](self).
#[derive(Debug)]
pub(crate) struct Promise {
    wanted: Vec<ObjectId>,
    stage: Stage,
    /// The promisor remotes of the store's config: (URL, filter).
    remotes: Vec<(String, String)>,
    /// The pack's files to store, once fetched.
    files: Vec<Stored>,
    /// The objects wanted that the remote gave, as loose objects.
    found: IdMap<Vec<u8>>,
}

impl Promise {
    pub(crate) fn new(wanted: Vec<ObjectId>) -> Self {
        Promise {
            wanted,
            stage: Stage::Config,
            remotes: Vec::new(),
            files: Vec::new(),
            found: IdMap::default(),
        }
    }

    /// The next step, `None` once done.
    pub(crate) fn next(&mut self) -> Result<Option<Step<()>>, object::Error> {
        Ok(match self.stage {
            Stage::Config => Some(Step::Read(vec![client::CONFIG.to_owned()])),
            Stage::Fetch => {
                let (url, filter) = &self.remotes[0];
                let remote = Remote {
                    url: url.clone(),
                    headers: Vec::new(),
                }
                .checked()
                .map_err(|err| self.unavailable(&err.to_string()))?;
                let fetch = v2::Fetch {
                    wants: self.wanted.clone(),
                    done: true,
                    ofs_delta: true,
                    no_progress: true,
                    filter: v2::Filter::from_spec(filter).ok(),
                    ..Default::default()
                };
                let mut body = Vec::new();
                v2::Request::new(v2::Command::Fetch(fetch))
                    .write_to(&mut body)
                    .map_err(|err| self.unavailable(&err.to_string()))?;
                Some(Step::Http(remote.upload_pack(body, MAX_PROMISED_BYTES)))
            }
            Stage::Write => Some(Step::Write(std::mem::take(&mut self.files))),
            Stage::Done => None,
        })
    }

    /// Take the answer to the last step.
    pub(crate) fn take(&mut self, cache: &ObjectCache, answer: Answer) -> Result<(), object::Error> {
        match (&self.stage, answer) {
            (Stage::Config, Answer::Read(mut files)) => {
                let config = files.pop().flatten().unwrap_or_default();
                self.remotes = client::promisor_remotes(&String::from_utf8_lossy(&config));
                self.stage = if self.remotes.is_empty() {
                    Stage::Done
                } else {
                    Stage::Fetch
                };
                Ok(())
            }
            (Stage::Fetch, Answer::Http(response)) => {
                let url = self.remotes[0].0.clone();
                client::check(&response, &url, "the fetch of promised objects")
                    .map_err(|err| self.unavailable(&err.to_string()))?;
                let pack = match v2::FetchResponse::from_bytes(&response.body, false, &Limits::default()) {
                    Ok(v2::FetchResponse::Pack(pack)) => pack.pack,
                    Ok(v2::FetchResponse::Acknowledgments { .. }) => {
                        return Err(self.unavailable(&format!("{} sent no pack", client::redact(&url))));
                    }
                    Err(err) => return Err(self.unavailable(&format!("{}: {err}", client::redact(&url)))),
                };
                self.store(cache, pack, &url)
            }
            (Stage::Write, Answer::Put) => {
                self.stage = Stage::Done;
                Ok(())
            }
            _ => Err(object::Error::Corrupt {
                id: self.wanted[0],
                reason: "the answer does not match the step asked for promised objects".into(),
            }),
        }
    }

    /// Index and check the pack, keep the objects wanted, and store it as a promisor pack.
    fn store(&mut self, cache: &ObjectCache, pack: Vec<u8>, url: &str) -> Result<(), object::Error> {
        if pack.is_empty() {
            self.stage = Stage::Done;
            return Ok(());
        }
        let wanted: IdSet = self.wanted.iter().copied().collect();
        let limits = *cache.limits();
        let mut found = IdMap::default();
        let mut visit = |id: ObjectId, kind: gix_object::Kind, content: &[u8]| -> Result<(), String> {
            if kind == gix_object::Kind::Blob && content.len() as u64 > limits.max_file_bytes {
                return Err(format!(
                    "blob {id} is over the limit of {} bytes",
                    limits.max_file_bytes
                ));
            }
            // Every object is checked as on any read (canonical trees and commits).
            let _: Object = object::parse(&id, kind, content).map_err(|err| err.to_string())?;
            if wanted.contains(&id) {
                found.insert(id, crate::pack::raw_loose(kind, content));
            }
            Ok(())
        };
        let indexed = ingest::index(
            cache.hash_kind(),
            "the promised objects",
            pack,
            limits.max_object_bytes,
            &mut visit,
        )
        .map_err(|err| self.unavailable(&format!("{}: {err}", client::redact(url))))?;
        let key = indexed.pack_key();
        let mut files = indexed.files();
        files.push(Stored {
            key: format!("{}.promisor", key.strip_suffix(".pack").unwrap_or(&key)),
            bytes: Vec::new(),
        });
        self.files = files;
        self.found = found;
        self.stage = Stage::Write;
        Ok(())
    }

    fn unavailable(&self, reason: &str) -> object::Error {
        object::Error::Unavailable {
            id: self.wanted[0],
            reason: reason.to_owned(),
        }
    }

    /// The objects the remote gave, as loose objects, by id.
    pub(crate) fn into_found(self) -> IdMap<Vec<u8>> {
        self.found
    }

    /// Whether the store names any promisor remote (known once the config is read).
    pub(crate) fn has_remotes(&self) -> bool {
        !self.remotes.is_empty()
    }
}
