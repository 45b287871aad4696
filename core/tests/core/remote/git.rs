//! Real git on the other side of each exchange: `git upload-pack` and `git receive-pack`
//! (in the stateless mode `git http-backend` runs them in) answer the requests our
//! client side writes, and our client side reads their answers; `git clone` and `git
//! push` read the answers our server side writes, and our server side reads the requests
//! they send (captured by a stand-in for the remote program that replays our bytes).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command as Process, Stdio},
};

use snapgit_core::{
    ObjectId,
    remote::{
        Capabilities, Limits,
        http::Service,
        pkt::{Packet, Reader},
        v0::{self, AdvertisedRef, Advertisement, PushRequest, RefStatus, Report, Status},
        v2::{self, Command, Deepen, Features, Fetch, FetchResponse, Filter, LsRefs, PackResponse, Ref, Request},
    },
};

fn limits() -> Limits {
    Limits::default()
}

/// Run git in `dir`, isolated from the machine's configuration, feeding `stdin`; the
/// command must succeed. `timeout` ends a run that would hang on a protocol mistake.
fn git_in(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Vec<u8> {
    let mut child = Process::new("timeout")
        .arg("120")
        .arg("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Agent")
        .env("GIT_AUTHOR_EMAIL", "agent@example.com")
        .env("GIT_COMMITTER_NAME", "Agent")
        .env("GIT_COMMITTER_EMAIL", "agent@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("LC_ALL", "C")
        .env_remove("GIT_PROTOCOL")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // git may stop reading early (and close the pipe) after an error.
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A repository with two commits on `main`, a branch `dev`, and an annotated tag `v1` on
/// the first commit.
struct Source {
    temp: tempfile::TempDir,
}

impl Source {
    fn new() -> Self {
        let source = Source {
            temp: tempfile::tempdir().unwrap(),
        };
        source.git(&["init", "--quiet", "--initial-branch=main", "."]);
        source.git(&["config", "gc.auto", "0"]);
        std::fs::write(source.path().join("notes.md"), "# Notes\n\n- one\n").unwrap();
        std::fs::create_dir(source.path().join("days")).unwrap();
        std::fs::write(source.path().join("days/1.md"), "first day\n").unwrap();
        source.git(&["add", "."]);
        source.git(&["commit", "--quiet", "-m", "first"]);
        source.git(&["tag", "-a", "-m", "version one", "v1"]);
        std::fs::write(source.path().join("notes.md"), "# Notes\n\n- one\n- two\n").unwrap();
        source.git(&["commit", "--quiet", "-am", "second"]);
        source.git(&["branch", "dev", "main~1"]);
        source
    }

    fn path(&self) -> &Path {
        self.temp.path()
    }

    fn git(&self, args: &[&str]) -> String {
        String::from_utf8(git_in(self.path(), args, &[], b"")).unwrap()
    }

    fn id(&self, rev: &str) -> ObjectId {
        ObjectId::from_hex(self.git(&["rev-parse", rev]).trim().as_bytes()).unwrap()
    }

    /// `git upload-pack` as `git http-backend` runs it for a v2 POST.
    fn upload_pack(&self, request: &[u8]) -> Vec<u8> {
        git_in(
            self.path(),
            &["upload-pack", "--stateless-rpc", "."],
            &[("GIT_PROTOCOL", "version=2")],
            request,
        )
    }

    /// A pack of every object reachable from `revs`, as `git pack-objects` writes it.
    fn pack(&self, revs: &str) -> Vec<u8> {
        git_in(
            self.path(),
            &["pack-objects", "--revs", "--stdout", "-q"],
            &[],
            revs.as_bytes(),
        )
    }
}

/// An empty bare repository.
fn bare() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    git_in(
        temp.path(),
        &["init", "--quiet", "--bare", "--initial-branch=main", "."],
        &[],
        b"",
    );
    temp
}

/// The objects a pack holds, from its header.
fn pack_count(pack: &[u8]) -> u32 {
    assert_eq!(&pack[..4], b"PACK");
    u32::from_be_bytes(pack[8..12].try_into().unwrap())
}

/// Lines of `git rev-list --objects` for `rev` in `dir`: fails if an object is missing.
fn object_count(dir: &Path, rev: &str) -> usize {
    String::from_utf8(git_in(dir, &["rev-list", "--objects", rev], &[], b""))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn we_read_the_v2_advertisement_of_git() {
    let source = Source::new();
    source.git(&["config", "uploadpack.allowFilter", "true"]);
    let out = git_in(
        source.path(),
        &["upload-pack", "--http-backend-info-refs", "."],
        &[("GIT_PROTOCOL", "version=2")],
        b"",
    );
    assert!(out.starts_with(b"000eversion 2\n"), "no # service= header over v2");
    let caps = v2::parse_advertisement(&out, &limits()).unwrap();
    assert!(caps.value("agent").unwrap().starts_with("git/"));
    assert!(caps.supports("ls-refs", "unborn"));
    assert!(caps.supports("fetch", "shallow") && caps.supports("fetch", "filter"));
    assert!(caps.contains("server-option"));
    assert_eq!(caps.value("object-format"), Some("sha1"));
}

#[test]
fn git_lists_refs_for_our_ls_refs_request_as_our_writer_would() {
    let source = Source::new();
    let ls_refs = LsRefs {
        symrefs: true,
        peel: true,
        unborn: true,
        prefixes: vec![],
    };
    let mut request = Vec::new();
    Request::new(Command::LsRefs(ls_refs.clone()))
        .write_to(&mut request)
        .unwrap();
    let out = source.upload_pack(&request);
    let refs = v2::parse_refs(&out, &limits()).unwrap();
    let main = source.id("main");
    let expected = vec![
        Ref {
            name: "HEAD".into(),
            id: Some(main),
            symref_target: Some("refs/heads/main".into()),
            peeled: None,
        },
        Ref {
            name: "refs/heads/dev".into(),
            id: Some(source.id("dev")),
            symref_target: None,
            peeled: None,
        },
        Ref {
            name: "refs/heads/main".into(),
            id: Some(main),
            symref_target: None,
            peeled: None,
        },
        Ref {
            name: "refs/tags/v1".into(),
            id: Some(source.id("v1")),
            symref_target: None,
            peeled: Some(source.id("v1^{commit}")),
        },
    ];
    assert_eq!(refs, expected);
    let mut ours = Vec::new();
    v2::write_refs(&mut ours, &ls_refs, &refs).unwrap();
    assert_eq!(ours, out, "our ls-refs output is git's, byte for byte");

    // Prefixes, as `git fetch` sends them.
    let mut request = Vec::new();
    let prefixed = LsRefs {
        prefixes: vec!["refs/tags/".into()],
        ..LsRefs::default()
    };
    Request::new(Command::LsRefs(prefixed.clone()))
        .write_to(&mut request)
        .unwrap();
    let out = source.upload_pack(&request);
    let mut ours = Vec::new();
    v2::write_refs(&mut ours, &prefixed, &expected).unwrap();
    assert_eq!(ours, out);
}

#[test]
fn git_lists_an_unborn_head_as_our_writer_would() {
    let empty = bare();
    let ls_refs = LsRefs {
        symrefs: true,
        unborn: true,
        ..LsRefs::default()
    };
    let mut request = Vec::new();
    Request::new(Command::LsRefs(ls_refs.clone()))
        .write_to(&mut request)
        .unwrap();
    let out = git_in(
        empty.path(),
        &["upload-pack", "--stateless-rpc", "."],
        &[("GIT_PROTOCOL", "version=2")],
        &request,
    );
    let refs = v2::parse_refs(&out, &limits()).unwrap();
    assert_eq!(
        refs,
        vec![Ref {
            name: "HEAD".into(),
            id: None,
            symref_target: Some("refs/heads/main".into()),
            peeled: None,
        }]
    );
    let mut ours = Vec::new();
    v2::write_refs(&mut ours, &ls_refs, &refs).unwrap();
    assert_eq!(ours, out);
}

#[test]
fn git_sends_a_pack_for_our_fetch_request() {
    let source = Source::new();
    let main = source.id("main");
    let fetch = Fetch {
        wants: vec![main],
        done: true,
        ofs_delta: true,
        include_tag: true,
        ..Fetch::default()
    };
    let mut request = Vec::new();
    Request::new(Command::Fetch(fetch)).write_to(&mut request).unwrap();
    let out = source.upload_pack(&request);
    let FetchResponse::Pack(response) = FetchResponse::from_bytes(&out, false, &limits()).unwrap() else {
        panic!("no pack");
    };
    assert_eq!(response.acknowledgments, None, "no acknowledgments after done");
    assert_eq!(response.shallow_info, None);
    // The pack indexes in a new repository, which then has all of main.
    let target = bare();
    git_in(target.path(), &["index-pack", "--stdin"], &[], &response.pack);
    let tag_objects = 1;
    assert_eq!(
        object_count(target.path(), &main.to_string()) + tag_objects,
        pack_count(&response.pack) as usize
    );
}

#[test]
fn git_answers_a_shallow_and_a_filtered_fetch_with_their_sections() {
    let source = Source::new();
    source.git(&["config", "uploadpack.allowFilter", "true"]);
    let main = source.id("main");
    let fetch = Fetch {
        wants: vec![main],
        done: true,
        deepen: Some(Deepen::Depth {
            depth: 1,
            relative: false,
        }),
        filter: Some(Filter::BlobNone),
        no_progress: true,
        ..Fetch::default()
    };
    let mut request = Vec::new();
    Request::new(Command::Fetch(fetch)).write_to(&mut request).unwrap();
    let out = source.upload_pack(&request);
    let FetchResponse::Pack(response) = FetchResponse::from_bytes(&out, false, &limits()).unwrap() else {
        panic!("no pack");
    };
    assert_eq!(response.shallow_info.unwrap().shallow, vec![main]);
    assert!(response.progress.is_empty(), "no-progress");
    // One commit and its two trees, no blob.
    assert_eq!(pack_count(&response.pack), 3);
}

#[test]
fn git_negotiates_with_our_haves() {
    let source = Source::new();
    let main = source.id("main");
    let unknown = ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap();
    let fetch = Fetch {
        wants: vec![main],
        haves: vec![unknown],
        ..Fetch::default()
    };
    let mut request = Vec::new();
    Request::new(Command::Fetch(fetch)).write_to(&mut request).unwrap();
    let out = source.upload_pack(&request);
    assert_eq!(
        FetchResponse::from_bytes(&out, false, &limits()).unwrap(),
        FetchResponse::Acknowledgments { common: vec![] }
    );
    let mut ours = Vec::new();
    FetchResponse::Acknowledgments { common: vec![] }
        .write_to(&mut ours, false)
        .unwrap();
    assert_eq!(ours, out);

    let first = source.id("main~1");
    let fetch = Fetch {
        wants: vec![main],
        haves: vec![first],
        ..Fetch::default()
    };
    let mut request = Vec::new();
    Request::new(Command::Fetch(fetch)).write_to(&mut request).unwrap();
    let out = source.upload_pack(&request);
    match FetchResponse::from_bytes(&out, false, &limits()).unwrap() {
        FetchResponse::Acknowledgments { common } => assert_eq!(common, vec![first]),
        FetchResponse::Pack(response) => {
            assert_eq!(response.acknowledgments, Some(vec![first]));
            // Only what main adds: the commit, its root tree and the changed blob.
            assert_eq!(pack_count(&response.pack), 3);
        }
    }
}

#[test]
fn git_refuses_a_want_it_does_not_have_with_an_error_we_read() {
    let source = Source::new();
    let unknown = ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap();
    let fetch = Fetch {
        wants: vec![unknown],
        done: true,
        ..Fetch::default()
    };
    let mut request = Vec::new();
    Request::new(Command::Fetch(fetch)).write_to(&mut request).unwrap();
    let out = Process::new("git")
        .args(["upload-pack", "--stateless-rpc", "."])
        .current_dir(source.path())
        .env("GIT_PROTOCOL", "version=2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(&request)?;
            child.wait_with_output()
        })
        .unwrap();
    let err = FetchResponse::from_bytes(&out.stdout, false, &limits()).unwrap_err();
    assert!(
        matches!(&err, snapgit_core::remote::Error::Remote { message } if message.contains("not our ref")),
        "{err:?}"
    );
}

#[test]
fn git_receive_pack_advertises_and_takes_our_push() {
    let source = Source::new();
    let target = bare();
    let main = source.id("main");

    let out = git_in(
        target.path(),
        &["receive-pack", "--http-backend-info-refs", "."],
        &[],
        b"",
    );
    let mut body = Vec::new();
    Service::ReceivePack.write_header(&mut body);
    body.extend_from_slice(&out);
    let ad = Advertisement::from_bytes(Service::ReceivePack.strip_header(&body).unwrap(), &limits()).unwrap();
    assert!(ad.refs.is_empty());
    for cap in ["report-status", "delete-refs", "side-band-64k", "ofs-delta"] {
        assert!(ad.capabilities.contains(cap), "{cap}");
    }

    // Create main and dev.
    let pack = source.pack("main\ndev\n");
    let zero = ObjectId::null(main.kind());
    let push = PushRequest {
        commands: vec![
            v0::Command {
                old: zero,
                new: main,
                name: "refs/heads/main".into(),
            },
            v0::Command {
                old: zero,
                new: source.id("dev"),
                name: "refs/heads/dev".into(),
            },
        ],
        capabilities: Capabilities::new(["report-status", "side-band-64k", "quiet"]),
        pack: &pack,
        ..PushRequest::default()
    };
    let mut request = Vec::new();
    push.write_to(&mut request).unwrap();
    let out = git_in(target.path(), &["receive-pack", "--stateless-rpc", "."], &[], &request);
    let (report, _) = Report::from_bytes(&out, true, &limits()).unwrap();
    let ok = |name: &str| RefStatus {
        name: name.into(),
        status: Status::Ok,
    };
    assert_eq!(
        report,
        Report {
            unpack: Status::Ok,
            refs: vec![ok("refs/heads/main"), ok("refs/heads/dev")],
        }
    );
    assert_eq!(object_count(target.path(), "main"), object_count(source.path(), "main"));
    let mut ours = Vec::new();
    report.write_to(&mut ours, true).unwrap();
    assert_eq!(ours, out, "our report-status in side-band is git's, byte for byte");

    // The advertisement now lists them, as our writer would.
    let out = git_in(
        target.path(),
        &["receive-pack", "--http-backend-info-refs", "."],
        &[],
        b"",
    );
    let ad = Advertisement::from_bytes(&out, &limits()).unwrap();
    let listed: Vec<_> = ad.refs.iter().map(|r| (r.name.to_string(), r.id)).collect();
    assert_eq!(
        listed,
        [
            ("refs/heads/dev".to_owned(), source.id("dev")),
            ("refs/heads/main".into(), main)
        ]
    );
    let mut ours = Vec::new();
    ad.write_to(&mut ours).unwrap();
    assert_eq!(ours, out, "our advertisement is git's, byte for byte");

    // A stale old id is refused for that ref alone; a delete needs no pack; no side-band.
    let empty_pack = source.pack("");
    let push = PushRequest {
        commands: vec![
            v0::Command {
                old: source.id("main~1"),
                new: main,
                name: "refs/heads/main".into(),
            },
            v0::Command {
                old: source.id("dev"),
                new: zero,
                name: "refs/heads/dev".into(),
            },
        ],
        capabilities: Capabilities::new(["report-status"]),
        pack: &empty_pack,
        ..PushRequest::default()
    };
    let mut request = Vec::new();
    push.write_to(&mut request).unwrap();
    let out = git_in(target.path(), &["receive-pack", "--stateless-rpc", "."], &[], &request);
    let (report, progress) = Report::from_bytes(&out, false, &limits()).unwrap();
    assert!(progress.is_empty());
    assert_eq!(report.unpack, Status::Ok);
    assert!(matches!(&report.refs[0].status, Status::Failed(_)), "{report:?}");
    assert_eq!(report.refs[1], ok("refs/heads/dev"));
    let mut ours = Vec::new();
    report.write_to(&mut ours, false).unwrap();
    assert_eq!(ours, out);
}

/// A stand-in for `git-upload-pack` or `git-receive-pack`: it writes `answer` (all of
/// it at once: the client reads it in its own time) and saves what the client sends.
struct Stand {
    dir: tempfile::TempDir,
}

impl Stand {
    fn new(answer: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("answer"), answer).unwrap();
        let script = format!(
            "#!/bin/sh\ncat '{dir}/answer'\ncat > '{dir}/request'\n",
            dir = dir.path().display()
        );
        let path = dir.path().join("remote.sh");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Stand { dir }
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("remote.sh")
    }

    fn request(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("request")).unwrap()
    }
}

/// The requests of a v2 session, each up to and including its final flush.
fn requests(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut requests = Vec::new();
    while !bytes.is_empty() {
        let mut reader = Reader::new(bytes);
        while reader.read().unwrap().expect("a request ends with a flush") != Packet::Flush {}
        requests.push(&bytes[..reader.offset()]);
        bytes = reader.rest();
    }
    requests
}

#[test]
fn git_clone_reads_our_advertisement_refs_and_pack() {
    let source = Source::new();
    let main = source.id("main");
    let refs: Vec<Ref> = [("HEAD", "main"), ("refs/heads/dev", "dev"), ("refs/heads/main", "main")]
        .into_iter()
        .map(|(name, rev)| Ref {
            name: name.into(),
            id: Some(source.id(rev)),
            symref_target: (name == "HEAD").then(|| "refs/heads/main".into()),
            peeled: None,
        })
        .chain([Ref {
            name: "refs/tags/v1".into(),
            id: Some(source.id("v1")),
            symref_target: None,
            peeled: Some(source.id("v1^{commit}")),
        }])
        .collect();
    let mut answer = Vec::new();
    v2::advertise(&mut answer, &Features::default());
    let all = LsRefs {
        symrefs: true,
        peel: true,
        unborn: true,
        prefixes: vec![],
    };
    v2::write_refs(&mut answer, &all, &refs).unwrap();
    let pack = git_in(source.path(), &["pack-objects", "--all", "--stdout", "-q"], &[], b"");
    FetchResponse::Pack(PackResponse {
        progress: b"snapgit: sending the pack\n".to_vec(),
        ..PackResponse::new(pack)
    })
    .write_to(&mut answer, false)
    .unwrap();
    let stand = Stand::new(&answer);

    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", source.path().display());
    let program = stand.program().display().to_string();
    git_in(
        clone.path(),
        &[
            "-c",
            "protocol.version=2",
            "clone",
            "--quiet",
            "--upload-pack",
            &program,
            &url,
            "copy",
        ],
        &[],
        b"",
    );
    let copy = clone.path().join("copy");
    let rev = |rev: &str| String::from_utf8(git_in(&copy, &["rev-parse", rev], &[], b"")).unwrap();
    assert_eq!(rev("HEAD").trim(), main.to_string());
    assert_eq!(rev("origin/dev").trim(), source.id("dev").to_string());
    assert_eq!(rev("v1").trim(), source.id("v1").to_string());
    git_in(&copy, &["fsck", "--full", "--strict"], &[], b"");
    let head = git_in(&copy, &["symbolic-ref", "HEAD"], &[], b"");
    assert_eq!(head, b"refs/heads/main\n");

    // What git sent: an ls-refs request, a fetch request, and perhaps the empty request.
    let sent = stand.request();
    let sent = requests(&sent);
    assert!(
        (2..=3).contains(&sent.len()),
        "{:?}",
        String::from_utf8_lossy(&stand.request())
    );
    let features = Features::default();
    let Some(Request {
        agent,
        object_format,
        command: Command::LsRefs(ls_refs),
        ..
    }) = Request::from_bytes(sent[0], &features, &limits()).unwrap()
    else {
        panic!("not ls-refs first");
    };
    assert!(agent.unwrap().starts_with("git/"));
    assert_eq!(object_format, Some(snapgit_core::HashKind::Sha1));
    assert!(ls_refs.symrefs && ls_refs.unborn);
    assert!(ls_refs.prefixes.contains(&"HEAD".into()));
    assert!(ls_refs.prefixes.contains(&"refs/heads/".into()));
    let Some(Request {
        command: Command::Fetch(fetch),
        ..
    }) = Request::from_bytes(sent[1], &features, &limits()).unwrap()
    else {
        panic!("not fetch second");
    };
    assert!(fetch.done && fetch.ofs_delta);
    assert!(fetch.wants.contains(&main) && fetch.wants.contains(&source.id("dev")));
    assert!(fetch.haves.is_empty());
    for empty in &sent[2..] {
        assert_eq!(Request::from_bytes(empty, &features, &limits()).unwrap(), None);
    }
}

#[test]
fn git_push_reads_our_advertisement_and_report() {
    let source = Source::new();
    let main = source.id("main");
    let target = bare();
    let mut answer = Vec::new();
    Advertisement {
        refs: vec![AdvertisedRef {
            name: "refs/heads/dev".into(),
            id: source.id("dev"),
            peeled: None,
        }],
        capabilities: v0::capabilities(),
        shallow: vec![],
    }
    .write_to(&mut answer)
    .unwrap();
    Report {
        unpack: Status::Ok,
        refs: vec![RefStatus {
            name: "refs/heads/main".into(),
            status: Status::Ok,
        }],
    }
    .write_to(&mut answer, true)
    .unwrap();
    let stand = Stand::new(&answer);

    let url = format!("file://{}", target.path().display());
    let program = stand.program().display().to_string();
    git_in(
        source.path(),
        &["push", "--receive-pack", &program, &url, "main:refs/heads/main"],
        &[],
        b"",
    );

    let sent = stand.request();
    let push = PushRequest::from_bytes(&sent, &v0::capabilities(), &limits()).unwrap();
    assert_eq!(
        push.commands,
        vec![v0::Command {
            old: ObjectId::null(main.kind()),
            new: main,
            name: "refs/heads/main".into(),
        }]
    );
    for cap in ["report-status", "side-band-64k", "object-format=sha1"] {
        assert!(
            push.capabilities.iter().any(|c| c == cap),
            "{cap}: {:?}",
            push.capabilities
        );
    }
    assert!(push.capabilities.value("agent").unwrap().starts_with("git/"));
    // The pack holds what dev lacks, and nothing thin (no-thin was advertised): it
    // indexes on its own once dev's objects are there.
    git_in(target.path(), &["index-pack", "--stdin"], &[], &source.pack("dev\n"));
    git_in(target.path(), &["index-pack", "--stdin"], &[], push.pack);
    assert_eq!(
        object_count(target.path(), &main.to_string()),
        object_count(source.path(), "main")
    );
    assert_eq!(
        pack_count(push.pack),
        3,
        "the second commit, its tree and the changed blob"
    );
}

/// The store's `shallow` file, one id per line; empty when absent.
fn shallow_of(store: &snapgit_core::drive::MemoryStore) -> Vec<ObjectId> {
    use snapgit_core::drive::ObjectStore;
    let file = store
        .read(&["shallow".to_owned()])
        .unwrap()
        .remove(0)
        .unwrap_or_default();
    String::from_utf8(file)
        .unwrap()
        .lines()
        .map(|line| ObjectId::from_hex(line.as_bytes()).unwrap())
        .collect()
}

/// A fetch of `main` at depth 1 into repo `a` (its pack: the second commit and every
/// object of its tree, the first commit left out) and, when `race` is set, a push of the
/// first commit into repo `b` that lands between the fetch's check of the parents and its
/// swap of the `shallow` file. Returns the file afterwards, and the two commits.
fn shallow_fetch(race: bool) -> (Vec<ObjectId>, ObjectId, ObjectId) {
    use snapgit_core::{
        drive::{self, MemoryStore},
        pack::Packed,
        policy::Policy,
        remote::receive::{self, Cut, Receive, RefUpdate},
        step::{Operation, Step},
    };
    let source = Source::new();
    let (first, second) = (source.id("main~1"), source.id("main"));
    let objects = source.git(&["rev-list", "--objects", "main"]);
    let listed: String = objects
        .lines()
        .filter(|line| !line.starts_with(&first.to_string()))
        .map(|line| format!("{}\n", &line[..40]))
        .collect();
    let fetched = git_in(
        source.path(),
        &["pack-objects", "--stdout", "-q"],
        &[],
        listed.as_bytes(),
    );
    let pushed = source.pack(&format!("{first}\n"));
    let update = |new| RefUpdate {
        name: "refs/heads/main".into(),
        old: ObjectId::null(gix_hash::Kind::Sha1),
        new,
    };
    let request = |repo: &str, new, pack, cut| receive::PushRequest {
        repo: repo.into(),
        updates: vec![update(new)],
        pack,
        allow_non_fast_forward: false,
        policy: Policy::default(),
        cut,
    };
    let store = MemoryStore::new();
    let mut cache = snapgit_core::ObjectCache::new(gix_hash::Kind::Sha1);
    let cut = Cut {
        promisor: false,
        shallow: vec![second],
        deepen: false,
    };
    let mut fetch = Packed::new(Receive::new(request("a", second, fetched, cut)).unwrap());
    // The fetch runs until it asks to swap the file: it has found the parent absent.
    let swap = loop {
        let step = fetch.poll(&mut cache).unwrap();
        if matches!(&step, Step::Swap(_)) {
            break step;
        }
        assert!(drive::carry(&mut fetch, &mut cache, &store, step).unwrap().is_none());
    };
    if race {
        let mut push = Receive::new(request("b", first, pushed, Cut::default())).unwrap();
        let mut other = snapgit_core::ObjectCache::new(gix_hash::Kind::Sha1);
        let done = drive::run(&mut push, &mut other, &store).unwrap();
        assert!(done.refs.iter().all(|(_, outcome)| outcome.is_ok()), "{done:?}");
        assert!(
            shallow_of(&store).is_empty(),
            "the push read the file before the fetch wrote it"
        );
    }
    let mut out = drive::carry(&mut fetch, &mut cache, &store, swap).unwrap();
    while out.is_none() {
        out = drive::step(&mut fetch, &mut cache, &store).unwrap();
    }
    let done = out.unwrap();
    assert!(done.refs.iter().all(|(_, outcome)| outcome.is_ok()), "{done:?}");
    (shallow_of(&store), first, second)
}

#[test]
fn a_shallow_fetch_lists_its_boundary_in_git_s_shallow_file() {
    let (file, _, second) = shallow_fetch(false);
    assert_eq!(file, [second]);
}

#[test]
fn a_boundary_whose_parents_a_racing_push_stored_is_not_left_listed() {
    // The push stored the parent after the fetch found it absent, and read the file
    // before the fetch wrote it: only the fetch's check after its swap sees both.
    let (file, _, _) = shallow_fetch(true);
    assert_eq!(
        file,
        Vec::<ObjectId>::new(),
        "an entry whose parent is stored cuts repo b's history for git"
    );
}

#[test]
fn a_deepening_pack_that_names_objects_no_one_has_is_refused_whole() {
    use snapgit_core::{
        drive::{self, MemoryStore, ObjectStore},
        policy::Policy,
        remote::receive::{self, Cut, Receive},
    };
    let source = Source::new();
    let first = source.id("main~1");
    // The first commit alone: its tree is in neither the pack nor the store.
    let alone = git_in(
        source.path(),
        &["pack-objects", "--stdout", "-q"],
        &[],
        format!("{first}\n").as_bytes(),
    );
    let request = receive::PushRequest {
        repo: "a".into(),
        updates: Vec::new(),
        pack: alone,
        allow_non_fast_forward: false,
        policy: Policy::default(),
        cut: Cut {
            promisor: false,
            shallow: vec![first],
            deepen: true,
        },
    };
    let store = MemoryStore::new();
    let mut cache = snapgit_core::ObjectCache::new(gix_hash::Kind::Sha1);
    let done = drive::run(&mut Receive::new(request).unwrap(), &mut cache, &store).unwrap();
    let reason = done.unpack.expect_err("refused");
    assert!(reason.starts_with("missing necessary objects"), "{reason}");
    assert_eq!(done.pack_key, None, "nothing is stored");
    assert!(store.list("objects/pack/").unwrap().is_empty());
}
