//! Where an audit report comes from: what ran it, where, for whom, against which signer and
//! stores, with which command and coverage window — so a report on an auditor's desk says
//! what it is evidence of.

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// A store as the audit saw it configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditedStore {
    /// Its name.
    pub name: String,
    /// Its URL without credentials or query string.
    pub url: String,
    /// Its site, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// The provenance of an audit report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    /// The snapdrill version that ran the audit.
    pub tool_version: String,
    /// The host it ran on.
    pub host: String,
    /// Who ran it (`--operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The pinned signer the commits were checked against, as configured.
    pub signer: String,
    /// Its fingerprint (first 8 bytes of the SHA-256 of that text, hex).
    pub signer_fingerprint: String,
    /// The stores audited, in configuration order.
    pub stores: Vec<AuditedStore>,
    /// The command line.
    pub command: String,
    /// Days of the read-coverage window.
    pub coverage_window_days: u64,
}

impl Provenance {
    /// The provenance of an audit of `config` run by `operator` with `command` (its
    /// arguments, as given).
    pub fn of(config: &Config, operator: Option<String>, command: &[String]) -> Provenance {
        let signer = config.signer.clone().unwrap_or_default();
        Provenance {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host: crate::hostname(),
            operator,
            signer_fingerprint: crate::keys::recipient::fingerprint(&signer),
            signer,
            stores: config
                .stores
                .iter()
                .map(|s| AuditedStore {
                    name: s.name.clone(),
                    url: crate::store::location::redact_url(&s.url),
                    site: s.site.clone(),
                })
                .collect(),
            command: command
                .iter()
                .map(|a| quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            coverage_window_days: super::coverage::WINDOW.as_secs() / 86400,
        }
    }
}

/// An argument as a shell reads it back: bare when plain, else in single quotes.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:%,@+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_a_shell_reads_them() {
        assert_eq!(quote("--read-data-subset"), "--read-data-subset");
        assert_eq!(quote("1/7"), "1/7");
        assert_eq!(quote("佐藤 健"), "'佐藤 健'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
