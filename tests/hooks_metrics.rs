//! Running snapdrill as an operator does (docs/operations.md): hooks and notify pings
//! around backups, drills and audits, the backup metrics textfile, bandwidth limits.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::servers::Server;
use common::{Env, code, promtool, random_bytes, show, stderr};

/// One request the recorder received.
#[derive(Debug, Clone)]
struct Ping {
    method: String,
    path: String,
    body: String,
}

/// A local HTTP server standing in for Healthchecks: it records every request and answers
/// 200, or 500 for paths containing `broken`. Each request is recorded before it is
/// answered, so once snapdrill has exited every ping it sent is in the list.
struct Recorder {
    port: u16,
    pings: Arc<Mutex<Vec<Ping>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pings = Arc::new(Mutex::new(Vec::new()));
        let seen = pings.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Some(ping) = read_request(&mut conn) else {
                    continue;
                };
                let status = if ping.path.contains("broken") {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                seen.lock().unwrap().push(ping);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                );
            }
        });
        Recorder { port, pings }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pings(&self) -> Vec<Ping> {
        self.pings.lock().unwrap().clone()
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<Ping> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(Ping {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Append TOML to the env's config.
fn append(env: &Env, toml: &str) {
    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(env.config(), format!("{text}\n{toml}")).unwrap();
}

/// `KEY=VALUE` lines of an `env` dump.
fn env_file(path: &std::path::Path) -> BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// A hook that keeps its environment and standard input in `<dir>/<name>.env/.json`.
fn recording_hook(env: &Env, name: &str) -> String {
    let base = env.p(name);
    format!("env > '{0}.env'; cat > '{0}.json'", base.to_str().unwrap())
}

#[test]
fn a_backup_pings_start_then_success_and_its_hooks_hear_the_report_without_secrets() {
    let hc = Recorder::start();
    let mut env = Env::new(&["tokyo", "osaka"]);
    // Canaries: a hook must see none of snapdrill's secrets.
    env.extra_env = vec![
        ("AWS_SECRET_ACCESS_KEY".into(), "canary-aws-secret".into()),
        (
            "SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND".into(),
            "echo canary-passphrase".into(),
        ),
    ];
    env.tree("exports", &[("customers.csv", b"id\n1\n2\n")]);
    append(
        &env,
        &format!(
            "[hooks]\non_success = \"echo the hook speaks\"\n\n\
             [[job]]\nname = \"exports\"\npaths = [\"exports\"]\n\
             [job.hooks]\non_start = \"{}\"\non_success = \"{}\"\nnotify = [\"{}\"]\n",
            recording_hook(&env, "start"),
            recording_hook(&env, "success"),
            hc.url("/ping/uuid-1")
        ),
    );
    let out = env.run(&["backup", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    // A hook's output goes to stderr: stdout stays the report.
    common::json(&common::stdout(&out));
    assert!(stderr(&out).contains("the hook speaks"), "{}", show(&out));

    let pings = hc.pings();
    let paths: Vec<&str> = pings.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/ping/uuid-1/start", "/ping/uuid-1"], "{pings:?}");
    assert!(pings.iter().all(|p| p.method == "POST"), "{pings:?}");
    assert!(pings[1].body.contains("success (exit 0)"), "{pings:?}");

    let start = env_file(&env.p("start.env"));
    assert_eq!(start["SNAPDRILL_EVENT"], "start");
    assert_eq!(start["SNAPDRILL_OPERATION"], "backup");
    assert_eq!(start["SNAPDRILL_JOB"], "exports");
    let success = env_file(&env.p("success.env"));
    assert_eq!(success["SNAPDRILL_EVENT"], "success");
    assert_eq!(success["SNAPDRILL_EXIT_CODE"], "0");
    let snapshot = &success["SNAPDRILL_SNAPSHOT"];
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(snapshot));
    let report = common::json(&fs::read_to_string(env.p("success.json")).unwrap());
    assert_eq!(report["event"], "success");
    assert_eq!(report["report"]["snapshot_id"], snapshot.as_str());
    assert_eq!(report["report"]["stores"].as_array().unwrap().len(), 2);

    for f in ["start.env", "success.env", "start.json", "success.json"] {
        let text = fs::read_to_string(env.p(f)).unwrap();
        assert!(!text.contains("canary"), "{f} holds a secret:\n{text}");
    }
    assert!(!success.contains_key("SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND"));
}

#[test]
fn a_failed_backup_pings_start_then_fail_with_the_error_and_runs_on_failure() {
    let hc = Recorder::start();
    let env = Env::new(&["tokyo"]);
    env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    append(
        &env,
        &format!(
            "[hooks]\non_failure = \"{}\"\non_success = \"touch '{}'\"\nnotify = [\"{}\"]\n\n\
             [[job]]\nname = \"exports\"\npaths = [\"exports\"]\ncomplete_marker = \".complete\"\n",
            recording_hook(&env, "failure"),
            env.p("success-ran").display(),
            hc.url("/ping/uuid-2")
        ),
    );
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 1, "{}", show(&out));

    let pings = hc.pings();
    let paths: Vec<&str> = pings.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/ping/uuid-2/start", "/ping/uuid-2/fail"],
        "{pings:?}"
    );
    assert!(
        pings[1].body.contains("failure (exit 1)") && pings[1].body.contains(".complete"),
        "the fail ping carries the error: {pings:?}"
    );
    let failure = env_file(&env.p("failure.env"));
    assert_eq!(failure["SNAPDRILL_EVENT"], "failure");
    assert_eq!(failure["SNAPDRILL_EXIT_CODE"], "1");
    assert!(
        failure["SNAPDRILL_SUMMARY"].contains(".complete"),
        "{failure:?}"
    );
    assert!(
        !env.p("success-ran").exists(),
        "on_success ran for a failed backup"
    );
}

#[test]
fn a_partial_backup_runs_on_partial_and_pings_fail() {
    let hc = Recorder::start();
    let env = Env::new(&["tokyo", "osaka"]);
    env.tree("exports", &[("a.txt", b"a")]);
    append(
        &env,
        &format!(
            "[hooks]\non_partial = \"{}\"\nnotify = [\"{}\"]\n\n[[job]]\nname = \"exports\"\npaths = [\"exports\"]\nrequire = 1\n",
            recording_hook(&env, "partial"),
            hc.url("/p")
        ),
    );
    // The osaka site lost its repository: the backup commits to tokyo alone, which the job
    // requires (exit 3).
    fs::remove_dir_all(env.store("osaka")).unwrap();
    fs::create_dir(env.store("osaka")).unwrap();
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    let partial = env_file(&env.p("partial.env"));
    assert_eq!(partial["SNAPDRILL_EVENT"], "partial");
    assert_eq!(partial["SNAPDRILL_EXIT_CODE"], "3");
    let paths: Vec<String> = hc.pings().into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["/p/start", "/p/fail"]);
}

#[test]
fn broken_hooks_and_notify_urls_only_warn() {
    let hc = Recorder::start();
    let env = Env::new(&["tokyo"]);
    env.tree("exports", &[("a.txt", b"a")]);
    append(
        &env,
        &format!(
            "[hooks]\non_start = \"exit 7\"\non_success = \"no-such-command-snapdrill\"\n\
             notify = [\"{}\"]\n\n[[job]]\nname = \"exports\"\npaths = [\"exports\"]\n\
             [job.hooks]\non_start = \"sleep 600\"\ntimeout = \"1s\"\n",
            hc.url("/broken/uuid-3")
        ),
    );
    let out = env.run(&["-q", "backup"]);
    assert_eq!(
        code(&out),
        0,
        "a broken hook changed the result\n{}",
        show(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("hook on_start (backup): exit 7"), "{err}");
    assert!(
        err.contains("hook on_start (backup): still running after 1s: stopped"),
        "a hanging hook is cut at its timeout: {err}"
    );
    assert!(err.contains("hook on_success (backup): exit 127"), "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(
        !err.contains("uuid-3"),
        "a warning printed the check's UUID: {err}"
    );
    assert_eq!(env.snapshot_ids().len(), 1);
    assert_eq!(hc.pings().len(), 2, "{:?}", hc.pings());
}

#[test]
fn drills_and_audits_have_their_own_hooks_and_metrics_files() {
    common::require_tool("promtool", "prometheus");
    let hc = Recorder::start();
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("a.csv", b"x\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    append(
        &env,
        &format!(
            "[drill.hooks]\nnotify = [\"{}\"]\nnotify_json = true\n\n\
             [audit.hooks]\nnotify = [\"{}\"]\non_failure = \"{}\"\n\n\
             [metrics]\ntextfile_dir = \"{}\"\n",
            hc.url("/drill"),
            hc.url("/audit"),
            recording_hook(&env, "audit-failure"),
            env.path().display(),
        ),
    );
    env.ok(&["restore-drill"]);
    env.ok(&["audit"]);
    // [metrics] textfile_dir: each command's own file.
    promtool(&env.p("snapdrill_drill.prom"));
    promtool(&env.p("snapdrill_audit.prom"));
    // notify_json: the drill's records, as JSON, in the success ping.
    let drill_ping = &hc.pings()[1];
    let body = common::json(&drill_ping.body);
    assert_eq!(body["operation"], "drill");
    assert_eq!(body["event"], "success");
    assert_eq!(body["report"][0]["result"], "pass", "{body}");
    // An audit that finds a problem: a chunk's copy removed.
    let chunk = &env.chunk_objects("tokyo")[0];
    fs::remove_file(chunk).unwrap();
    let out = env.run(&["audit"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    let paths: Vec<String> = hc.pings().into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "/drill/start",
            "/drill",
            "/audit/start",
            "/audit",
            "/audit/start",
            "/audit/fail"
        ]
    );
    let failure = env_file(&env.p("audit-failure.env"));
    assert_eq!(failure["SNAPDRILL_OPERATION"], "audit");
    assert_eq!(failure["SNAPDRILL_EXIT_CODE"], code(&out).to_string());
}

#[test]
fn hook_settings_are_checked_when_the_config_is_read() {
    let env = Env::new(&["tokyo"]);
    append(&env, "[hooks]\nnotify = [\"ftp://example.com/x\"]\n");
    let out = env.run(&["config", "check"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("[hooks] notify: 'ftp://example.com/x' is not an http(s) URL"));
}

/// `name{labels} value` lines of a textfile.
fn samples(path: &std::path::Path) -> BTreeMap<String, f64> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[test]
fn backup_metrics_pass_promtool_and_keep_the_last_success_of_every_job() {
    common::require_tool("promtool", "prometheus");
    let env = Env::new(&["tokyo", "osaka"]);
    env.tree(
        "exports",
        &[
            ("customers.csv", &random_bytes(300_000, 5)),
            (".complete", b""),
        ],
    );
    env.tree("crm", &[("crm.sql", b"select 1;\n")]);
    append(
        &env,
        "[[job]]\nname = \"exports\"\npaths = [\"exports\"]\ncomplete_marker = \".complete\"\n\n\
         [[job]]\nname = \"crm\"\npaths = [\"crm\"]\n",
    );
    let metrics = env.p("backup.prom");
    env.ok(&["backup", "--metrics-file", metrics.to_str().unwrap()]);
    promtool(&metrics);
    let first = samples(&metrics);
    let success =
        |job: &str| format!("snapdrill_backup_last_success_timestamp_seconds{{job=\"{job}\"}}");
    let committed = |job: &str, store: &str| {
        format!("snapdrill_backup_store_committed{{job=\"{job}\",store=\"{store}\"}}")
    };
    assert_eq!(first[&committed("exports", "osaka")], 1.0);
    assert_eq!(first["snapdrill_backup_exit_code{job=\"crm\"}"], 0.0);
    assert!(
        first["snapdrill_backup_read_bytes{job=\"exports\"}"] >= 300_000.0,
        "{first:?}"
    );
    assert!(
        first["snapdrill_backup_stored_bytes{job=\"exports\"}"] > 0.0,
        "{first:?}"
    );

    // The export is unfinished: that job fails, the other is not run; through [metrics].
    fs::remove_file(env.p("exports/.complete")).unwrap();
    append(
        &env,
        &format!("[metrics]\ntextfile_dir = \"{}\"\n", env.path().display()),
    );
    assert_eq!(env.code(&["backup", "--job", "exports"]), 1);
    let dir_file = env.p("snapdrill_backup.prom");
    promtool(&dir_file);
    let second = samples(&dir_file);
    assert_eq!(second["snapdrill_backup_exit_code{job=\"exports\"}"], 1.0);
    assert_eq!(second[&committed("exports", "osaka")], 0.0);
    assert_eq!(second[&success("exports")], first[&success("exports")]);
    assert_eq!(
        second[&success("crm")],
        first[&success("crm")],
        "the other job stays listed"
    );
    assert!(
        second["snapdrill_backup_last_run_timestamp_seconds{job=\"exports\"}"]
            >= first[&success("exports")]
    );
}

#[test]
fn limit_upload_holds_a_backup_to_the_rate_and_limit_download_a_restore() {
    let s3 = Server::start("moto");
    let env = Env::with_stores_toml(&s3.store_toml("s3", "limits", ""), s3.credentials(), true);
    let src = env.tree("big", &[("calls.bin", &random_bytes(50_000_000, 9))]);
    let started = Instant::now();
    let out = env.run(&["--limit-upload", "5MiB", "backup", src.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", show(&out));
    // 50 MB at 5 MiB/s is 9.5 s of link time: a lower bound, whatever the machine.
    assert!(
        took.as_secs_f64() >= 9.0,
        "50 MB uploaded in {took:?} under a 5 MiB/s limit"
    );

    // The store's own setting, for downloads: 50 MB at 20 MiB/s is at least 2.3 s.
    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(
        env.config(),
        text.replace("[[store]]\n", "[[store]]\nlimit_download = \"20MiB\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let target = env.p("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(
        took.as_secs_f64() >= 2.3,
        "50 MB downloaded in {took:?} under 20 MiB/s"
    );
    assert_eq!(
        common::sha256_file(&target.join("big/calls.bin")),
        common::sha256_file(&src.join("calls.bin"))
    );
}

#[test]
fn a_bad_limit_names_the_store() {
    let env = Env::new(&["tokyo"]);
    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(
        env.config(),
        text.replace("[[store]]\n", "[[store]]\nlimit_upload = \"fast\"\n"),
    )
    .unwrap();
    let out = env.run(&["config", "check"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("store 'tokyo': limit_upload"),
        "{}",
        show(&out)
    );
    let out = env.run(&["--limit-upload", "0", "snapshots"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
}

/// A dry run is a look, not a backup: no hook runs, no URL is pinged, no metrics are
/// written — a monitoring system must not count it as a night's success.
#[test]
fn a_dry_run_runs_no_hook_pings_nothing_and_writes_no_metrics() {
    let hc = Recorder::start();
    let env = Env::new(&["tokyo"]);
    env.tree("exports", &[("customers.csv", b"id\n1\n2\n")]);
    let textfiles = env.p("textfiles");
    fs::create_dir(&textfiles).unwrap();
    append(
        &env,
        &format!(
            "[metrics]\ntextfile_dir = \"{}\"\n\n\
             [[job]]\nname = \"exports\"\npaths = [\"exports\"]\n\
             [job.hooks]\non_start = \"{}\"\nnotify = [\"{}\"]\n",
            textfiles.display(),
            recording_hook(&env, "start"),
            hc.url("/ping/dry")
        ),
    );
    let out = env.run(&["backup", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(hc.pings().is_empty(), "{:?}", hc.pings());
    assert!(!env.p("start.env").exists(), "the start hook ran");
    assert_eq!(fs::read_dir(&textfiles).unwrap().count(), 0);
    // The same config, a real backup: the hook, the ping and the textfile (the test can fail).
    env.ok(&["backup"]);
    assert!(env.p("start.env").exists());
    assert_eq!(hc.pings().len(), 2, "{:?}", hc.pings());
    assert_eq!(fs::read_dir(&textfiles).unwrap().count(), 1);
}
