//! The JSON API of `snapgit serve` under contention: several server processes on one
//! store, many clients committing to one branch through them at once. Every commit must
//! be acknowledged (no LOST_RACE at the defaults), every acknowledged commit must be in
//! the branch's history as git reads it, and the store must pass `git fsck --strict`.
//! On a folder store always; on a bucket (ministack) with the Redis lock when
//! `SNAPGIT_SERVICES=1`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{
    serve::Server,
    support::{Services, Work, download, services, unique},
};

/// What the clients saw.
struct Outcome {
    acknowledged: Vec<String>,
    attempts: u64,
    failures: Vec<String>,
}

/// `clients` tasks, each making `commits` one-file commits to `main` of `agent`: each
/// turn rewrites the client's own memory file (replayable: no other client writes it),
/// and each turn goes to the next server, as an agent's turns reach a load balancer.
fn commit_concurrently(servers: &[String], clients: usize, commits: usize) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let http = http.clone();
                let servers = servers.to_vec();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for n in 0..commits {
                        let base = &servers[(client + n) % servers.len()];
                        let body = json!({
                            "author": { "name": format!("client {client}"), "email": "client@example.com" },
                            "message": format!("client {client} commit {n}"),
                            "changes": [{ "type": "put", "path": format!("c{client}/memory.md"), "data": format!("turn {n}\n") }],
                        });
                        let response = http
                            .post(format!("{base}/v1/repos/agent/branches/main/commits"))
                            .header("content-type", "application/json")
                            .body(body.to_string())
                            .send()
                            .await;
                        let result = match response {
                            Ok(response) => {
                                let status = response.status();
                                let text = response.text().await.unwrap_or_default();
                                match serde_json::from_str::<Value>(&text) {
                                    Ok(out) if status.is_success() => Ok((
                                        out["commit"].as_str().unwrap_or_default().to_owned(),
                                        out["attempts"].as_u64().unwrap_or(0),
                                    )),
                                    _ => Err(format!("{status}: {text}")),
                                }
                            }
                            Err(err) => Err(err.to_string()),
                        };
                        seen.push(result);
                    }
                    seen
                })
            })
            .collect();
        let mut outcome = Outcome {
            acknowledged: Vec::new(),
            attempts: 0,
            failures: Vec::new(),
        };
        for task in tasks {
            for result in task.await.expect("a client finishes") {
                match result {
                    Ok((commit, attempts)) => {
                        outcome.acknowledged.push(commit);
                        outcome.attempts += attempts;
                    }
                    Err(failure) => outcome.failures.push(failure),
                }
            }
        }
        outcome
    })
}

/// Every acknowledged commit is in `log` (git's `rev-list` of the branch), once.
#[track_caller]
fn check(outcome: &Outcome, log: &str, clients: usize, commits: usize) {
    assert!(
        outcome.failures.is_empty(),
        "{} of {} commits failed, the first: {}",
        outcome.failures.len(),
        clients * commits,
        outcome.failures[0]
    );
    let history: BTreeSet<&str> = log.lines().collect();
    assert_eq!(
        log.lines().count(),
        clients * commits + 1,
        "one commit each, and the first"
    );
    for commit in &outcome.acknowledged {
        assert!(
            history.contains(commit.as_str()),
            "{commit} was acknowledged but is not in the branch"
        );
    }
    eprintln!(
        "{} commits by {clients} clients: {:.2} attempts per commit",
        outcome.acknowledged.len(),
        outcome.attempts as f64 / outcome.acknowledged.len() as f64
    );
}

/// Each client's memory file holds its last turn: no turn undid a later one.
#[track_caller]
fn check_memory(show: impl Fn(&str) -> String, clients: usize, commits: usize) {
    for client in 0..clients {
        let path = format!("refs/namespaces/agent/refs/heads/main:c{client}/memory.md");
        assert_eq!(show(&path), format!("turn {}\n", commits - 1), "{path}");
    }
}

fn create_agent(server: &Server) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/repos", server.base()))
            .header("content-type", "application/json")
            .body(json!({ "repo": "agent", "author": { "name": "A", "email": "a@example.com" } }).to_string())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    });
}

#[test]
fn three_servers_on_one_folder_lose_no_commit() {
    let work = Work::init();
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&work, &[])).collect();
    create_agent(&servers[0]);
    let bases: Vec<String> = servers.iter().map(Server::base).collect();
    let (clients, commits) = (32, 10);
    let outcome = commit_concurrently(&bases, clients, commits);
    let log = work.git(&["rev-list", "refs/namespaces/agent/refs/heads/main"]);
    check(&outcome, &log, clients, commits);
    check_memory(|path| work.git(&["show", path]), clients, commits);
    work.git(&["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn three_servers_on_one_bucket_lose_no_commit() {
    let Some(Services { aws, bucket, redis_url }) = services() else {
        return;
    };
    let work = Work::empty();
    let url = format!("s3://{bucket}/{}", unique("api-contention"));
    let mut env: Vec<(String, String)> = aws.clone();
    env.push(("SNAPGIT_STORE".into(), url.clone()));
    env.push(("SNAPGIT_REDIS_URL".into(), redis_url));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let init = {
        let mut command = crate::support::snapgit(work.path());
        command.envs(env_refs.iter().copied());
        crate::support::run_with_stdin(command, &["init"], b"")
    };
    init.ok();
    let servers: Vec<Server> = (0..3).map(|_| Server::start_with_env(&work, &[], &env_refs)).collect();
    create_agent(&servers[0]);
    let bases: Vec<String> = servers.iter().map(Server::base).collect();
    let (clients, commits) = (32, 50);
    let outcome = commit_concurrently(&bases, clients, commits);
    let copy = work.path().join("copy.git");
    download(&url, &aws, &copy);
    let log = crate::support::git(&copy, &["rev-list", "refs/namespaces/agent/refs/heads/main"]);
    check(&outcome, &log, clients, commits);
    check_memory(|path| crate::support::git(&copy, &["show", path]), clients, commits);
    crate::support::git(&copy, &["fsck", "--strict", "--no-dangling"]);
}
