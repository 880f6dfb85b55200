//! Every example config in `fixtures/` parses and passes the checks `config check` makes.

use std::path::Path;

use snapdrill::config::Config;

#[test]
fn every_example_config_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut found = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                let config = Config::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                snapdrill::keys::parse_recipients(&config.recipients)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                if let Some(s) = &config.signer {
                    snapdrill::keys::parse_signer(s)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                }
                assert!(!config.stores.is_empty());
                found += 1;
            }
        }
    }
    assert!(
        found >= 4,
        "expected the example configs and the vectors' configs, found {found}"
    );
}

/// The README's quick-start config is what a new user copies: it must parse, with its jobs.
#[test]
fn the_readme_config_parses_with_its_jobs() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block in the README");
    let config = Config::parse(block, Path::new("/etc/snapdrill/snapdrill.toml"))
        .unwrap_or_else(|e| panic!("README config: {e}"));
    let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["exports", "crm"]);
    assert!(config.jobs[0].retention.is_some());
    assert_eq!(config.jobs[0].health.shrink_alert, Some(30));
    assert_eq!(config.jobs[1].stdin_name.as_deref(), Some("crm.sql"));
}
