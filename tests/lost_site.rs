//! A lost site: a replica that answers but holds no repository (an unmounted volume, a
//! wiped folder) is a failed store, never a failed run; `init --store` and `sync` rebuild
//! it with everything the others hold, drill records included.

mod common;

use std::fs;

use common::*;

/// Three stores, two of which must commit.
fn three_sites() -> Env {
    let env = Env::new(&["tokyo", "osaka", "sapporo"]);
    let config = fs::read_to_string(env.config()).unwrap();
    fs::write(env.config(), format!("{config}\n[backup]\nrequire = 2\n")).unwrap();
    env
}

#[test]
fn a_lost_replica_is_left_out_named_and_rebuilt_by_init_store_and_sync() {
    let env = three_sites();
    let src = env.tree(
        "exports",
        &[("customers.csv", b"id\n1\n"), ("db/crm.sql", b"--\n")],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["restore-drill", "--store", "tokyo"]);
    // The volume of tokyo is gone (not mounted): its folder does not exist.
    fs::remove_dir_all(env.store("tokyo")).unwrap();
    fs::write(src.join("customers.csv"), b"id\n1\n2\n").unwrap();
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stdout(&out).contains("committed to 2 of 3 stores (2 required)"),
        "{}",
        show(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("store 'tokyo' did not commit") && err.contains("init --store tokyo"),
        "{err}"
    );
    assert!(
        !env.store("tokyo").exists(),
        "a backup never creates a lost store's folder"
    );
    // A wiped replica (the folder there, empty) is the same.
    fs::create_dir_all(env.store("tokyo")).unwrap();
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stderr(&out).contains("holds no repository"),
        "{}",
        show(&out)
    );
    // init without --create refuses a missing folder, naming the store; with the folder
    // back, init --store gives it the repository the others hold, and sync everything else.
    fs::remove_dir_all(env.store("tokyo")).unwrap();
    let out = env.run(&["init", "--store", "tokyo"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stderr(&out).contains("store 'tokyo'") && stderr(&out).contains("--create"),
        "{}",
        show(&out)
    );
    assert!(!env.store("tokyo").exists());
    env.ok(&["init", "--store", "tokyo", "--create"]);
    assert_eq!(
        fs::read(env.store("tokyo").join("config")).unwrap(),
        fs::read(env.store("osaka").join("config")).unwrap(),
        "the rebuilt store holds the very config the others hold"
    );
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("1 drill records"), "{synced}");
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let drill = env.ok(&["restore-drill", "--store", "tokyo", "--json"]);
    assert_eq!(json(&drill)[0]["result"], "pass", "{drill}");
    // Its history is there too: the drill before the loss and this one.
    let history = env.ok(&["drills", "--store", "tokyo", "--json"]);
    assert_eq!(json(&history).as_array().unwrap().len(), 2, "{history}");
}

#[test]
fn below_require_the_snapshot_is_listed_restorable_and_the_message_says_so() {
    let env = three_sites();
    let src = env.tree("exports", &[("a.csv", b"a\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    fs::remove_dir_all(env.store("tokyo")).unwrap();
    fs::remove_dir_all(env.store("osaka")).unwrap();
    fs::write(src.join("a.csv"), b"a\nb\n").unwrap();
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("committed to 1 of 3 stores (2 required); it is listed and restorable"),
        "{text}"
    );
    let listed = env.ok(&["snapshots"]);
    assert_eq!(
        listed.lines().filter(|l| l.contains(" sapporo ")).count(),
        2,
        "{listed}"
    );
    let target = env.p("r");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("exports/a.csv")).unwrap(), b"a\nb\n");
}
