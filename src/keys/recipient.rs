//! The people and escrow keys a repository's secrets are sealed to: age X25519 recipients
//! (`age1…`), SSH public keys (`ssh-ed25519 …`, `ssh-rsa …`) and age plugin recipients
//! (`age1yubikey1…`, encrypted by `age-plugin-yubikey` found on `PATH`).
//!
//! These recipients never encrypt data directly (docs/format.md section 5): they seal the
//! repository's *read keys* and its dedup key, so that adding one is a config change, not a
//! rewrite of every object.

use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One recipient as written in configs: its text and what it is.
#[derive(Clone)]
pub struct RecipientKey {
    text: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
    Plugin(age::plugin::Recipient),
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecipientKey({})", self.text)
    }
}

const HINT: &str = "recipients are age1... (printed by `snapdrill keygen` or `age-keygen`), an SSH public key (ssh-ed25519 AAAA... or ssh-rsa AAAA...), or an age plugin recipient (age1yubikey1...)";

impl RecipientKey {
    /// Parse a recipient line. An SSH key's comment (after the key) is dropped, so that
    /// the same key is the same recipient whatever the comment.
    pub fn parse(line: &str) -> Result<Self> {
        let line = line.trim();
        let bad =
            |why: String| Error::key(format!("recipient '{line}' is not usable: {why}"), HINT);
        if line.starts_with("ssh-") {
            let mut parts = line.split_whitespace();
            let text = match (parts.next(), parts.next()) {
                (Some(kind), Some(key)) => format!("{kind} {key}"),
                _ => return Err(bad("an SSH key is `TYPE BASE64 [comment]`".into())),
            };
            let key = age::ssh::Recipient::from_str(&text).map_err(|e| {
                bad(match e {
                    age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                        "the RSA key is shorter than 2048 bits".into()
                    }
                    age::ssh::ParseRecipientKeyError::Unsupported(t) => {
                        format!("SSH key type {t} is not supported (use ssh-ed25519 or ssh-rsa)")
                    }
                    _ => "not a valid ssh-ed25519 or ssh-rsa public key".into(),
                })
            })?;
            return Ok(RecipientKey {
                text,
                kind: Kind::Ssh(key),
            });
        }
        if let Ok(key) = age::x25519::Recipient::from_str(line) {
            return Ok(RecipientKey {
                text: line.to_owned(),
                kind: Kind::X25519(key),
            });
        }
        match age::plugin::Recipient::from_str(line) {
            Ok(key) => Ok(RecipientKey {
                text: line.to_owned(),
                kind: Kind::Plugin(key),
            }),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The recipient as written in configs (an SSH key without its comment).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What kind of key it is: `x25519`, `ssh-ed25519`, `ssh-rsa`, `plugin:NAME`.
    pub fn kind(&self) -> String {
        match &self.kind {
            Kind::X25519(_) => "x25519".into(),
            Kind::Ssh(_) => self.text.split(' ').next().unwrap_or("ssh").into(),
            Kind::Plugin(p) => format!("plugin:{}", p.plugin()),
        }
    }

    /// The X25519 recipient, when it is one.
    pub fn x25519(&self) -> Option<&age::x25519::Recipient> {
        match &self.kind {
            Kind::X25519(r) => Some(r),
            _ => None,
        }
    }

    /// A short fingerprint to tell recipients apart in listings: the first 8 bytes of the
    /// SHA-256 of the recipient's text, in hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.text)
    }

    /// The recipient as the age crate encrypts to it. A plugin recipient needs its plugin
    /// (`age-plugin-NAME`) on `PATH`.
    pub fn to_age(&self) -> Result<Box<dyn age::Recipient + Send>> {
        Ok(match &self.kind {
            Kind::X25519(r) => Box::new(r.clone()),
            Kind::Ssh(r) => Box::new(r.clone()),
            Kind::Plugin(r) => {
                let plugin = age::plugin::RecipientPluginV1::new(
                    r.plugin(),
                    std::slice::from_ref(r),
                    &[],
                    PluginMessages,
                )
                .map_err(|_| plugin_missing(r.plugin(), &self.text))?;
                Box::new(plugin)
            }
        })
    }
}

/// The error when `age-plugin-NAME` is not installed.
pub fn plugin_missing(plugin: &str, key: &str) -> Error {
    Error::key(
        format!("the age plugin `age-plugin-{plugin}` that {key} needs is not on PATH"),
        format!(
            "install age-plugin-{plugin} (and its device) on this host, or run where it is installed"
        ),
    )
}

/// The fingerprint of a recipient's text (see [`RecipientKey::fingerprint`]).
pub fn fingerprint(text: &str) -> String {
    hex::encode(&Sha256::digest(text.trim().as_bytes())[..8])
}

/// A plugin's messages go to standard error; it gets no answers from snapdrill (a device
/// PIN is asked by the plugin's own pinentry).
#[derive(Clone, Copy)]
pub struct PluginMessages;

impl age::Callbacks for PluginMessages {
    fn display_message(&self, message: &str) {
        eprintln!("snapdrill: age plugin: {message}");
    }

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, _: &str) -> Option<age::secrecy::SecretString> {
        None
    }
}

/// Parse the configured recipients: at least one, at most [`super::MAX_RECIPIENTS`], no
/// two alike.
pub fn parse_all(list: &[String]) -> Result<Vec<RecipientKey>> {
    if list.is_empty() {
        return Err(Error::key(
            "no recipients are configured: nothing could ever be decrypted",
            "add the age1... line printed by `snapdrill keygen` to [repository] recipients",
        ));
    }
    if list.len() > super::MAX_RECIPIENTS {
        return Err(Error::key(
            format!(
                "{} recipients are configured; at most {} are supported",
                list.len(),
                super::MAX_RECIPIENTS
            ),
            "keep the recipients of the people and escrow keys that restore; readers refuse objects with more",
        ));
    }
    let mut keys: Vec<RecipientKey> = Vec::with_capacity(list.len());
    for line in list {
        let key = RecipientKey::parse(line)?;
        if keys.iter().any(|k| k.text == key.text) {
            return Err(Error::key(
                format!("recipient {} is listed twice", key.text),
                "list each recipient once in [repository] recipients",
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The recipients objects are encrypted to in a repository of format version 1 or 2 (no
/// read keys yet): the configured ones, which must all be X25519.
pub fn legacy_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    parse_all(list)?
        .iter()
        .map(|k| {
            k.x25519().cloned().ok_or_else(|| {
                Error::key(
                    format!(
                        "recipient {} is a {} key, which this repository (format version 2, no read keys) cannot use",
                        k.text(),
                        k.kind()
                    ),
                    format!("run `snapdrill keys add '{}'` instead of editing the config: it gives the repository read keys", k.text()),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSH_ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust";

    #[test]
    fn parses_each_kind_and_drops_ssh_comments() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        assert_eq!(RecipientKey::parse(&x).unwrap().kind(), "x25519");
        let ssh = RecipientKey::parse(SSH_ED25519).unwrap();
        assert_eq!(ssh.kind(), "ssh-ed25519");
        assert!(!ssh.text().contains("alice"));
        let plugin = "age1yubikey1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5z5tpwxqergd3c8g7ruszzkhc85l";
        assert_eq!(
            RecipientKey::parse(plugin).unwrap().kind(),
            "plugin:yubikey"
        );
        let err = RecipientKey::parse("ssh-dss AAAAB3NzaC1kc3MAAACBAP").unwrap_err();
        assert_eq!(err.exit_code(), 12);
        assert!(RecipientKey::parse("age1nope").is_err());
        assert!(
            parse_all(&[x.clone(), x]).is_err(),
            "duplicates are refused"
        );
    }

    #[test]
    fn a_plugin_recipient_without_its_plugin_names_the_plugin() {
        let key = RecipientKey::parse(
            "age1snapdrilltest1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5z5tpwxqergd3c8g7ruszzpqnvcc",
        )
        .unwrap();
        assert_eq!(key.kind(), "plugin:snapdrilltest");
        let err = key.to_age().err().expect("no such plugin on PATH");
        assert!(
            err.to_string().contains("age-plugin-snapdrilltest"),
            "{err}"
        );
    }
}
