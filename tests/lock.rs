//! The local job lock: an overlapping run of the same backup job exits 11 at once, naming
//! the lock file and its holder; other jobs are not blocked; a killed holder leaves nothing
//! stale behind.
//!
//! The long-running backups wait for a gate file (`<dir>/go`) instead of sleeping, so that
//! the tests do not depend on how fast the machine is.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Env, code, files_under, show, stderr};

/// Creates `<dir>/started`, waits for `<dir>/go` (60 s at most, so that a failed test leaves
/// no process behind for long), then prints a line.
const GATED: &str = "touch started; i=0; while [ ! -e go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo hi";

/// A repository in one local store whose state folder (locks) is `<dir>/state`.
fn env() -> Env {
    let env = Env::new(&["a"]);
    let text = fs::read_to_string(env.config()).unwrap();
    assert!(text.contains("state_dir = \"state\"\n"), "{text}");
    env
}

/// A running snapdrill, killed if the test fails before waiting for it.
struct Running(Option<Child>);

impl Running {
    fn start(env: &Env, args: &[&str]) -> Running {
        let child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning snapdrill");
        Running(Some(child))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn still_running(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    fn kill(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup of any kind runs
        child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The lock file that names `run` as its holder, once it does (10 s at most); fails at once
/// if `run` ends first (refused, for instance).
fn wait_for_holder(env: &Env, run: &mut Running) -> PathBuf {
    let pid = run.pid();
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = format!("pid {pid}\n");
    loop {
        if !run.still_running() {
            let out = run.0.take().unwrap().wait_with_output().unwrap();
            panic!("pid {pid} ended before holding a lock\n{}", show(&out));
        }
        let held = files_under(&env.p("state/locks")).into_iter().find(|f| {
            fs::read_to_string(f)
                .map(|t| t.starts_with(&want))
                .unwrap_or(false)
        });
        if let Some(f) = held {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "no lock file names pid {pid} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_gate(env: &Env) {
    fs::write(env.p("go"), "").unwrap();
}

#[test]
fn an_overlapping_run_of_the_same_job_exits_11_at_once_and_names_the_holder() {
    let env = env();
    let args = ["backup", "--command", GATED, "--stdin-name", "x"];
    let mut first = Running::start(&env, &args);
    let lock = wait_for_holder(&env, &mut first);

    // "At once": the holder is held at its gate until we open it, so a second run that
    // waited for the lock could never return before the gate opens (checked below).
    let second = env.run(&args);
    assert_eq!(code(&second), 11, "{}", show(&second));
    let err = stderr(&second);
    assert!(err.contains(&lock.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {} on ", first.pid())), "{err}");
    assert!(
        err.contains("hint: another snapdrill backup of this job is running"),
        "{err}"
    );
    assert!(first.still_running(), "the runs did not overlap");

    open_gate(&env);
    let first = first.finish();
    assert_eq!(code(&first), 0, "{}", show(&first));
    // The lock freed itself: the same job runs again.
    let third = env.run(&args);
    assert_eq!(code(&third), 0, "{}", show(&third));
    assert_eq!(env.snapshot_ids().len(), 2);
}

#[test]
fn a_different_job_is_not_blocked() {
    let env = env();
    let mut first = Running::start(&env, &["backup", "--command", GATED, "--stdin-name", "x"]);
    let lock = wait_for_holder(&env, &mut first);

    // Other paths: another job, another lock.
    let tree = env.tree("data", &[("a.txt", b"alpha")]);
    let other = env.run(&["backup", tree.to_str().unwrap()]);
    assert_eq!(code(&other), 0, "{}", show(&other));
    // Another command under another stream name: also another job. (Its output differs
    // from the first job's: two runs sealing the same new chunk at once is not what this
    // test is about.)
    let renamed = env.run(&["backup", "--command", "echo other", "--stdin-name", "y"]);
    assert_eq!(code(&renamed), 0, "{}", show(&renamed));
    assert_eq!(files_under(&env.p("state/locks")).len(), 3);
    assert!(lock.exists());
    assert!(first.still_running(), "the runs did not overlap");

    open_gate(&env);
    let first = first.finish();
    assert_eq!(code(&first), 0, "{}", show(&first));
    assert_eq!(env.snapshot_ids().len(), 3);
}

#[test]
fn a_killed_holder_leaves_no_stale_lock() {
    let env = env();
    let args = ["backup", "--command", GATED, "--stdin-name", "x"];
    let mut first = Running::start(&env, &args);
    let lock = wait_for_holder(&env, &mut first);
    // Let snapdrill get as far as running the command: its `sh` outlives the kill below, and
    // the lock's descriptor must not have leaked into it.
    wait_for(&env.p("started"));
    first.kill();
    assert!(lock.exists(), "the file stays; only the flock is gone");

    // The same job takes the lock at once, while the orphaned `sh` still waits for the gate.
    let mut again = Running::start(&env, &args);
    assert_eq!(wait_for_holder(&env, &mut again), lock);
    open_gate(&env); // ends both the orphaned `sh` and this run's command
    let again = again.finish();
    assert_eq!(code(&again), 0, "{}", show(&again));
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
