//! A passphrase-protected identity file (`age -p`) on a restore host: the passphrase comes
//! from `$SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND` under cron, or from a prompt on a terminal.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::*;

/// Replace the env's identity file by the same identity protected with `passphrase`, as
/// `age -p` writes it (scrypt; a low work factor keeps the test quick).
fn protect_identity(env: &Env, passphrase: &str) {
    let text = fs::read(env.identity()).unwrap();
    let mut r = age::scrypt::Recipient::new(passphrase.to_owned().into());
    r.set_work_factor(10);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(&text).unwrap();
    w.finish().unwrap();
    fs::write(env.identity(), out).unwrap();
    fs::set_permissions(env.identity(), fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_passphrase_protected_identity_restores_with_a_command_or_a_prompt() {
    let env = Env::new(&["a"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    protect_identity(&env, "correct horse");
    let restore = |target: &str, command: Option<&str>| {
        let mut c = env.cmd(&["restore", "latest", "--target", target]);
        // Never a controlling terminal here: a prompt would wait forever.
        let mut s = Command::new("setsid");
        s.arg("-w").arg(c.get_program());
        s.args(c.get_args());
        s.current_dir(env.path())
            .env("HOME", env.path())
            .env_remove("SNAPDRILL_CONFIG");
        if let Some(cmd) = command {
            s.env("SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND", cmd);
        }
        let _ = &mut c;
        s.stdin(Stdio::null()).output().unwrap()
    };
    // Under cron: the passphrase command.
    let out = restore("r1", Some("printf 'correct horse'"));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_same_tree(&src, &env.p("r1/exports"));
    // A wrong passphrase, and none at all: exit 12, the file and the variable named.
    let out = restore("r2", Some("echo battery staple"));
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(stderr(&out).contains("wrong passphrase"), "{}", show(&out));
    let out = restore("r3", None);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(
        stderr(&out).contains("SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND"),
        "{}",
        show(&out)
    );
    // On a terminal: asked, without echo.
    require_tool("script", "bsdutils");
    let line = format!(
        "{BIN} --config {} restore latest --target r4",
        env.config().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(env.path())
        .env("HOME", env.path())
        .env_remove("SNAPDRILL_CONFIG")
        .env_remove("SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Type only once the prompt is shown (as a person would): before that, the terminal
    // still echoes.
    let mut stdout = child.stdout.take().unwrap();
    let mut before = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&before).contains("passphrase for the identity") {
        use std::io::Read;
        assert_eq!(
            stdout.read(&mut byte).unwrap(),
            1,
            "no prompt: {}",
            String::from_utf8_lossy(&before)
        );
        before.push(byte[0]);
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(shown.contains("passphrase for the identity"), "{shown}");
    assert!(
        !shown.contains("correct horse"),
        "the passphrase was echoed: {shown}"
    );
    assert_same_tree(&src, &env.p("r4/exports"));
    // config check does not try to open it.
    let checked = env.ok(&["config", "check"]);
    assert!(checked.contains("passphrase-protected"), "{checked}");
}
