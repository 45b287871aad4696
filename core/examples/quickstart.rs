//! Commit an agent's memory twice into a local folder laid out as a bare git repository,
//! then read it back. Afterwards `git --git-dir <folder> log --stat` shows the history.
//!
//! ```text
//! cargo run -p snapgit-core --example quickstart -- ./agent-memory.git
//! ```
//!
//! Core performs no IO; this example is the driver: it answers core's `Get`s from the
//! folder and writes the objects core builds into it.

use std::path::{Path, PathBuf};

use snapgit_core::{
    ObjectCache, ObjectId, Operation, Step,
    commit::{self, Change, Signature},
    object::{NewObject, loose_key},
    read,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Run an operation against loose objects in `repo`.
fn run<O: Operation>(op: &mut O, cache: &mut ObjectCache, repo: &Path) -> Result<O::Output, O::Error> {
    loop {
        match op.poll(cache)? {
            Step::Get(ids) => {
                let objects = ids
                    .iter()
                    .map(|id| std::fs::read(repo.join(loose_key(id))).ok())
                    .collect();
                op.provide(cache, objects)?;
            }
            Step::Done(output) => return Ok(output),
            _ => unreachable!("reads and commits only ask for objects"),
        }
    }
}

/// Write new objects, then move the branch: objects first, so the ref never points at
/// anything missing.
fn store(repo: &Path, objects: &[NewObject], head: &ObjectId) -> Result<(), BoxError> {
    for object in objects {
        let path = repo.join(object.key());
        if !path.exists() {
            std::fs::create_dir_all(path.parent().ok_or("object keys have a folder")?)?;
            std::fs::write(&path, &object.loose)?;
        }
    }
    std::fs::create_dir_all(repo.join("refs/heads"))?;
    std::fs::write(repo.join("refs/heads/main"), format!("{head}\n"))?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let repo = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "agent-memory.git".into()));
    std::fs::create_dir_all(repo.join("objects"))?;
    std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n")?;
    let parent = std::fs::read_to_string(repo.join("refs/heads/main"))
        .ok()
        .map(|hex| ObjectId::from_hex(hex.trim().as_bytes()))
        .transpose()?;

    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let now = 1_763_700_000 + parent.map_or(0, |_| 3600);
    let agent = Signature::new("Memory Agent", "agent@example.com", now);

    let turn = commit::Request::new(
        parent,
        vec![
            Change::put("memory/user.md", "# User\n- prefers short answers\n"),
            Change::put("memory/facts.json", "{\"project\": \"snapgit\"}\n"),
            Change::put("transcripts/turn-1.jsonl", "{\"role\":\"user\",\"text\":\"hi\"}\n"),
        ],
        agent.clone(),
        "turn 1: remember the user",
    );
    let mut op = commit::Commit::new(&cache, turn)?;
    let first = run(&mut op, &mut cache, &repo)?;
    store(&repo, &first.objects, &first.id)?;
    println!("commit {} ({} new objects)", first.id, first.objects.len());

    let turn = commit::Request::new(
        Some(first.id),
        vec![
            Change::put("memory/user.md", "# User\n- prefers short answers\n- works in Rust\n"),
            Change::delete("transcripts/turn-1.jsonl"),
        ],
        Signature::new("Memory Agent", "agent@example.com", now + 60),
        "turn 2: learn the language",
    );
    let mut op = commit::Commit::new(&cache, turn)?;
    let second = run(&mut op, &mut cache, &repo)?;
    store(&repo, &second.objects, &second.id)?;
    println!(
        "commit {} ({} new objects, {} storage rounds)",
        second.id,
        second.objects.len(),
        op.rounds()
    );
    for file in &second.files {
        let lines = file
            .lines
            .map_or("binary".to_string(), |l| format!("+{} -{}", l.added, l.removed));
        println!("  {:?} {} {lines}", file.kind, file.path);
    }

    // A fresh cache reads from the folder, as another process would.
    let mut cold = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = read::ReadFiles::new(second.id, "")?;
    for file in run(&mut op, &mut cold, &repo)? {
        println!("{}:\n{}", file.path, String::from_utf8_lossy(&file.file.data));
    }
    println!("inspect with: git --git-dir {} log --stat", repo.display());
    Ok(())
}
