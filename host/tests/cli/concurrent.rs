//! Several `snapgit` processes committing to one branch at once: every acknowledged
//! commit survives, and git reads one linear history holding all of them.

use std::{collections::BTreeSet, path::Path};

use crate::support::{Services, Work, download, git, run_with_stdin, services, snapgit, unique};

/// Run `writers` processes at once, each making `turns` commits of its own files, and
/// return every commit id they were told landed, and how many commits held the lock.
fn race(dir: &Path, env: &[(String, String)], writers: usize, turns: usize) -> (Vec<String>, usize) {
    let (mut landed, mut held) = (Vec::new(), 0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    let mut locked = 0;
                    for turn in 0..turns {
                        let mut command = snapgit(dir);
                        command.envs(env.iter().map(|(k, v)| (k, v)));
                        let path = format!("agent-{writer}/turn-{turn}.md");
                        let message = format!("writer {writer} turn {turn}");
                        let content = format!("# writer {writer}\nturn {turn}\n");
                        let out = run_with_stdin(
                            command,
                            &["--json", "commit", "--stdin", &path, "-m", &message],
                            content.as_bytes(),
                        );
                        let report = out.json();
                        assert_eq!(report["created"], true, "{report}");
                        // With a lock service every commit takes the branch's lock (or
                        // goes ahead without it after waiting its ttl); without, none does.
                        let locks = env.iter().any(|(k, _)| k == "SNAPGIT_REDIS_URL");
                        if !locks {
                            assert_eq!(report["locked"], false);
                        }
                        locked += usize::from(report["locked"] == true);
                        ids.push(report["commit"].as_str().expect("an id").to_owned());
                    }
                    (ids, locked)
                })
            })
            .collect();
        for handle in handles {
            let (ids, locked) = handle.join().expect("a writer finished");
            landed.extend(ids);
            held += locked;
        }
    });
    (landed, held)
}

/// The history git reads from a store folder, and its files.
fn check_with_git(store: &Path, landed: &[String], writers: usize, turns: usize) -> Vec<String> {
    let main = "refs/namespaces/default/refs/heads/main";
    git(store, &["fsck", "--strict"]);
    let history: Vec<String> = git(store, &["log", "--format=%H", main])
        .lines()
        .map(str::to_owned)
        .collect();
    // The first commit (init) and one per turn of every writer; nothing lost.
    assert_eq!(history.len(), 1 + writers * turns);
    let seen: BTreeSet<&String> = history.iter().collect();
    for id in landed {
        assert!(seen.contains(id), "acknowledged commit {id} is not in the history");
    }
    let files: BTreeSet<String> = git(store, &["ls-tree", "-r", "--name-only", main])
        .lines()
        .map(str::to_owned)
        .collect();
    for writer in 0..writers {
        for turn in 0..turns {
            assert!(files.contains(&format!("agent-{writer}/turn-{turn}.md")));
        }
    }
    history
}

fn snapgit_log(dir: &Path, env: &[(String, String)]) -> Vec<String> {
    let mut command = snapgit(dir);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let out = command
        .args(["--json", "log", "-n", "1000"])
        .output()
        .expect("snapgit runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    log["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn processes_racing_on_a_local_folder_lose_nothing() {
    let work = Work::init();
    let (writers, turns) = (6, 5);
    let (landed, _) = race(work.path(), &[], writers, turns);
    let history = check_with_git(&work.store(), &landed, writers, turns);
    assert_eq!(snapgit_log(work.path(), &[]), history);
}

#[test]
fn processes_racing_on_s3_with_redis_locks_lose_nothing() {
    let Some(Services { aws, bucket, redis_url }) = services() else {
        return;
    };
    let work = Work::empty();
    let url = format!("s3://{bucket}/{}", unique("cli-race"));
    let mut env = aws.clone();
    env.push(("SNAPGIT_STORE".into(), url.clone()));
    env.push(("SNAPGIT_REDIS_URL".into(), redis_url));
    let mut init = snapgit(work.path());
    init.envs(env.iter().map(|(k, v)| (k, v))).arg("init");
    assert!(init.status().expect("snapgit runs").success());

    let (writers, turns) = (4, 4);
    let (landed, held) = race(work.path(), &env, writers, turns);
    assert!(held > 0, "no commit held the Redis lock");

    // A copy of the prefix is a git repository with the same history.
    let copy = work.path().join("copy.git");
    download(&url, &aws, &copy);
    let history = check_with_git(&copy, &landed, writers, turns);
    assert_eq!(snapgit_log(work.path(), &env), history);
}
