//! Keys over the years: `keys add` gives a new recipient every snapshot, `keys remove` +
//! `rekey` shut the old one out of every object in every store (checked with the stock
//! `age`), an edit of the config's recipients alone is refused, SSH recipients work, and a
//! rekey killed with SIGKILL at random instants never loses a snapshot.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::*;

/// Three sites, two files of data, `backups` snapshots (each changes one file).
fn repository_with_history(backups: usize) -> (Env, PathBuf) {
    let env = Env::new(&["tokyo", "osaka", "sapporo"]);
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", b"id,name\n1,Ana\n"),
            ("db/crm.bin", &random_bytes(1_500_000, 7)),
        ],
    );
    for n in 0..backups {
        fs::write(
            src.join("customers.csv"),
            format!("id,name\n1,Ana\n{n},B\n"),
        )
        .unwrap();
        env.ok(&["backup", src.to_str().unwrap()]);
    }
    (env, src)
}

fn keygen(env: &Env, name: &str) -> (PathBuf, String) {
    let path = env.p(name);
    let recipient = env
        .ok(&["keygen", "-o", path.to_str().unwrap()])
        .trim()
        .to_owned();
    (path, recipient)
}

/// Every snapshot restores with `identity`.
fn every_snapshot_restores(env: &Env, identity: &Path, label: &str) {
    every_snapshot_restores_but(env, identity, label, "")
}

/// Every snapshot but `skip` restores with `identity`.
fn every_snapshot_restores_but(env: &Env, identity: &Path, label: &str, skip: &str) {
    for id in env.snapshot_ids().into_iter().filter(|i| i != skip) {
        let target = env.p(&format!("restored-{label}-{id}"));
        let out = env.run(&[
            "restore",
            &id,
            "-t",
            target.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{label}: snapshot {id}: {}", show(&out));
        fs::remove_dir_all(&target).unwrap();
    }
}

/// The encrypted objects of every store (chunks, manifests, drill and audit records,
/// fossils).
fn encrypted_objects(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for store in &env.stores {
        for dir in ["chunks", "manifests", "drills", "audits", "fossils"] {
            let d = env.store(store).join(dir);
            if d.exists() {
                out.extend(files_under(&d));
            }
        }
    }
    assert!(!out.is_empty());
    out
}

fn stock_age_opens(identity: &Path, object: &Path) -> bool {
    Command::new("age")
        .args(["-d", "-i"])
        .arg(identity)
        .arg(object)
        .output()
        .expect("running age")
        .status
        .success()
}

#[test]
fn keys_add_reads_every_snapshot_and_remove_with_rekey_shuts_the_old_key_out_everywhere() {
    require_tool("age", "age");
    let (env, src) = repository_with_history(2);
    env.ok(&["restore-drill", "--store", "osaka"]);
    env.ok(&["audit", "--record"]);
    assert_eq!(names_in(&env.store("osaka").join("audits")).len(), 1);
    let (b, b_recipient) = keygen(&env, "b.txt");
    // The config's identity (A) is here: the new recipient gets every older read key too.
    let out = env.ok(&["keys", "add", &b_recipient]);
    assert!(out.contains("keys changed: generation 2"), "{out}");
    assert!(
        fs::read_to_string(env.config())
            .unwrap()
            .contains(&b_recipient)
    );
    fs::write(src.join("customers.csv"), b"id,name\n9,Z\n").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    every_snapshot_restores(&env, &b, "b-after-add");

    let listing = env.ok(&["keys", "list"]);
    assert!(
        listing.contains(&b_recipient) && listing.contains("add age1"),
        "{listing}"
    );
    env.ok(&[
        "keys",
        "remove",
        &env.recipient,
        "--identity",
        b.to_str().unwrap(),
    ]);
    let out = env.ok(&["rekey", "--identity", b.to_str().unwrap()]);
    assert!(out.contains("rekey complete"), "{out}");

    // No object in any store opens with A any more — nor with B directly: they are all
    // encrypted to the new read key, which only B's identity unseals.
    let a = env.identity();
    let objects = encrypted_objects(&env);
    for o in &objects {
        assert!(
            !stock_age_opens(&a, o),
            "{} still opens with the removed key",
            o.display()
        );
    }
    let read_key = read_key_by_hand(&env.store("tokyo"), &b, &env.p("read-key.txt"));
    for o in &objects {
        assert!(
            stock_age_opens(&read_key, o),
            "{} does not open with the read key",
            o.display()
        );
    }
    every_snapshot_restores(&env, &b, "b-after-rekey");
    let out = env.run(&[
        "restore",
        "latest",
        "-t",
        "x",
        "--identity",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    let out = env.run(&["audit", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    // The drill history survived the rekey, and a drill with B passes.
    let drill = env.ok(&[
        "restore-drill",
        "--store",
        "sapporo",
        "--identity",
        b.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(json(&drill)[0]["result"], "pass", "{drill}");
    let history = env.ok(&["drills", "--identity", b.to_str().unwrap(), "--json"]);
    assert!(json(&history).as_array().unwrap().len() >= 2, "{history}");
    // So did the audit history (every copy authenticated, or `audits` exits 13).
    let audits = env.ok(&["audits", "--identity", b.to_str().unwrap(), "--json"]);
    assert_eq!(json(&audits).as_array().unwrap().len(), 1, "{audits}");
}

#[test]
fn recipients_edited_in_the_config_alone_are_refused_and_nothing_is_written() {
    let (env, src) = repository_with_history(1);
    let (_, b_recipient) = keygen(&env, "b.txt");
    let before: Vec<PathBuf> = files_under(&env.p("stores"));
    let config = fs::read_to_string(env.config()).unwrap();
    let edited = config.replace(
        &format!("recipients = [\"{}\"]", env.recipient),
        &format!("recipients = [\"{}\", \"{b_recipient}\"]", env.recipient),
    );
    assert_ne!(config, edited);
    fs::write(env.config(), edited).unwrap();
    for args in [
        vec!["backup", src.to_str().unwrap()],
        vec!["config", "check"],
        vec!["init"],
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains("not the repository's")
                && err.contains(&format!("snapdrill keys add '{b_recipient}'")),
            "{args:?}: {err}"
        );
    }
    assert_eq!(files_under(&env.p("stores")), before, "nothing was written");
    // Removing A by hand is refused the same way, naming `keys remove`.
    fs::write(env.config(), config.replace(&env.recipient, &b_recipient)).unwrap();
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("snapdrill keys remove"),
        "{}",
        show(&out)
    );
}

#[test]
fn an_ssh_recipient_round_trips() {
    require_tool("ssh-keygen", "openssh-client");
    let (env, _) = repository_with_history(1);
    let key = env.p("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "responder@site",
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    let out = env.ok(&["keys", "add", public.trim()]);
    assert!(out.contains("generation 2"), "{out}");
    let listing = env.ok(&["keys", "list"]);
    assert!(listing.contains("ssh-ed25519"), "{listing}");
    every_snapshot_restores(&env, &key, "ssh");
    // An SSH key that is not a recipient is refused with exit 12.
    let other = env.p("id_other");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    let out = env.run(&[
        "restore",
        "latest",
        "-t",
        "y",
        "--identity",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 12, "{}", show(&out));
}

#[test]
fn rekey_killed_at_random_instants_never_loses_a_snapshot_and_a_rerun_finishes() {
    let (env, src) = repository_with_history(2);
    // More objects: eight files of their own chunks.
    for i in 0..8u64 {
        fs::write(
            src.join(format!("db/part-{i}.bin")),
            random_bytes(700_000, 100 + i),
        )
        .unwrap();
    }
    env.ok(&["backup", src.to_str().unwrap()]);
    let (b, b_recipient) = keygen(&env, "b.txt");
    env.ok(&["keys", "add", &b_recipient]);
    env.ok(&[
        "keys",
        "remove",
        &env.recipient,
        "--identity",
        b.to_str().unwrap(),
    ]);
    let identity = b.to_str().unwrap().to_owned();
    // Calibrate: how long does a whole rekey take here?
    let started = Instant::now();
    env.ok(&["rekey", "--identity", &identity]);
    let span = started.elapsed().as_micros().max(5_000) as u64;
    let seed = time_seed();
    let mut rng = rng(seed);
    let mut killed = 0;
    for round in 0..10 {
        let mut child = env
            .cmd(&["rekey", "--identity", &identity])
            .spawn()
            .unwrap();
        // The kill instant (not a synchronisation: the test holds whatever state it finds).
        let at = rand::RngCore::next_u64(&mut rng) % span;
        std::thread::sleep(Duration::from_micros(at));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: nothing can clean up
            killed += 1;
        }
        child.wait().unwrap();
        every_snapshot_restores(&env, &b, &format!("kill-{round}"));
    }
    let out = env.ok(&["rekey", "--identity", &identity]);
    assert!(out.contains("rekey complete"), "seed {seed}: {out}");
    let audit = env.run(&["audit", "--read-data"]);
    assert_eq!(code(&audit), 0, "seed {seed}: {}", show(&audit));
    every_snapshot_restores(&env, &b, "final");
    assert!(
        killed >= 3,
        "seed {seed}: only {killed} of 10 runs were killed mid-way"
    );
}

/// A copy of this host's config and write key, as another host keeps them.
fn other_host(env: &Env, name: &str) -> PathBuf {
    let key = env.p(&format!("{name}-write.key"));
    fs::copy(env.write_key(), &key).unwrap();
    set_mode(&key, 0o600);
    let config = fs::read_to_string(env.config()).unwrap().replace(
        "[repository]\n",
        &format!("[repository]\nwrite_key = \"{name}-write.key\"\n"),
    );
    let path = env.p(&format!("{name}.toml"));
    fs::write(&path, config).unwrap();
    path
}

fn run_with(env: &Env, config: &Path, args: &[&str]) -> std::process::Output {
    env.cmd_with(config, args).output().unwrap()
}

#[test]
fn a_rotated_write_key_keeps_history_verifiable_and_is_refused_once_its_window_ends() {
    let (env, src) = repository_with_history(2);
    let first = other_host(&env, "first");
    let pinned_before = fs::read_to_string(env.config()).unwrap();
    let out = env.ok(&["keys", "rotate-write-key", "--overlap", "1h"]);
    assert!(out.contains("write key rotated"), "{out}");
    assert_ne!(
        fs::read_to_string(env.config()).unwrap(),
        pinned_before,
        "the new signer is pinned"
    );
    // This host (new signer pinned) verifies and restores the snapshots the old key signed.
    every_snapshot_restores(&env, &env.identity(), "rotated");
    env.ok(&["backup", src.to_str().unwrap()]);
    // A host still pinning the old signer follows the handover, and is told to re-pin.
    let out = run_with(&env, &first, &["snapshots", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("write key was rotated"),
        "{}",
        show(&out)
    );
    assert_eq!(
        json(&stdout(&out))["snapshots"].as_array().unwrap().len(),
        3
    );
    // A backup host with the old key still commits within the window, warned.
    fs::write(src.join("customers.csv"), b"id\n42\n").unwrap();
    let out = run_with(&env, &first, &["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(stderr(&out).contains("retired"), "{}", show(&out));

    // Rotate again with no overlap: the second key's window ends at once.
    let second = other_host(&env, "second");
    env.ok(&["keys", "rotate-write-key", "--overlap", "0s"]);
    let out = run_with(&env, &second, &["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(stderr(&out).contains("was rotated to"), "{}", show(&out));
    // Everything signed by the three keys in their time still verifies everywhere.
    assert_eq!(env.snapshot_ids().len(), 4);
    every_snapshot_restores(&env, &env.identity(), "twice-rotated");
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let history = env.ok(&["keys", "list"]);
    assert_eq!(
        history.matches("write key rotated to").count(),
        2,
        "{history}"
    );
}

/// Turn the repository of `env` into one as snapdrill 0.2 wrote it (format 2: no read keys,
/// no recorded recipients), in every store.
fn make_format_2(env: &Env) {
    use snapdrill::format::repo_config::RepoConfig;
    let key = snapdrill::keys::WriteKey::load(&env.write_key()).unwrap();
    for store in &env.stores {
        let path = env.store(store).join("config");
        let mut c = RepoConfig::from_object(&fs::read(&path).unwrap(), &key.signer()).unwrap();
        let recipient = age::x25519::Recipient::from_str(&env.recipient).unwrap();
        let sealed = snapdrill::sealing::encrypt(&key.dedup, &[recipient]).unwrap();
        c.version = 1;
        c.generation = 0;
        c.recipients.clear();
        c.read_keys.clear();
        c.change = None;
        c.dedup_key = base64_encode(&sealed);
        fs::write(&path, c.to_object(&key)).unwrap();
        let _ = fs::remove_dir_all(env.store(store).join("keys"));
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn a_format_2_repository_gets_read_keys_at_its_first_key_change_and_rekey_moves_the_old_objects() {
    let env = Env::new(&["tokyo", "osaka"]);
    make_format_2(&env);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let old = env.snapshot_ids().pop().unwrap();
    // Format 2: the objects open with the identity itself.
    let chunk = env.chunk_objects("tokyo").pop().unwrap();
    assert!(stock_age_opens(&env.identity(), &chunk));
    let (b, b_recipient) = keygen(&env, "b.txt");
    let out = env.run(&["keys", "add", &b_recipient]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(stderr(&out).contains("snapdrill rekey"), "{}", show(&out));
    fs::write(src.join("customers.csv"), b"id\n2\n").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    // B reads the new snapshot, not yet the old one (its objects name A alone)...
    every_snapshot_restores_but(&env, &b, "partial", &old);
    let out = env.run(&[
        "restore",
        &old,
        "-t",
        "x",
        "--identity",
        b.to_str().unwrap(),
    ]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    // ...until a rekey moves them onto the read key.
    env.ok(&["rekey"]);
    every_snapshot_restores(&env, &b, "after-rekey");
    assert!(!stock_age_opens(&env.identity(), &chunk));
}

#[test]
fn a_format_2_repository_can_be_rekeyed_directly() {
    let env = Env::new(&["tokyo"]);
    make_format_2(&env);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let out = env.ok(&["rekey"]);
    assert!(out.contains("rekey complete"), "{out}");
    let listing = env.ok(&["keys", "list"]);
    assert!(
        listing.contains(&env.recipient) && listing.contains("read keys: 1"),
        "{listing}"
    );
    let chunk = env.chunk_objects("tokyo").pop().unwrap();
    assert!(!stock_age_opens(&env.identity(), &chunk));
    every_snapshot_restores(&env, &env.identity(), "format-2-rekeyed");
    let out = env.run(&["audit", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// The test plugin (fixtures/plugin: TEST ONLY, a fake age plugin speaking the protocol),
/// and a recipient and identity of it.
const PLUGIN_RECIPIENT: &str =
    "age1snapdrilltest1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5z5tpwxqergd3c8g7ruszzpqnvcc";
const PLUGIN_IDENTITY: &str =
    "AGE-PLUGIN-SNAPDRILLTEST-19Q5J52EV95HZ7VP3XGENGDFKXUURJW3M8S7NU06QG9PYX3Z9GERSFAYZXE";

#[test]
fn a_plugin_recipient_round_trips_through_its_plugin_on_path() {
    let (mut env, _) = repository_with_history(1);
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plugin");
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Without the plugin on PATH: one plain error naming it, nothing changed.
    let out = env.run(&["keys", "add", PLUGIN_RECIPIENT]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(
        stderr(&out).contains("age-plugin-snapdrilltest"),
        "{}",
        show(&out)
    );
    env.extra_env.push(("PATH".into(), path));
    let out = env.ok(&["keys", "add", PLUGIN_RECIPIENT]);
    assert!(out.contains("generation 2"), "{out}");
    assert!(env.ok(&["keys", "list"]).contains("plugin:snapdrilltest"));
    let identity = env.p("plugin-identity.txt");
    fs::write(&identity, format!("# TEST ONLY\n{PLUGIN_IDENTITY}\n")).unwrap();
    set_mode(&identity, 0o600);
    every_snapshot_restores(&env, &identity, "plugin");
}
