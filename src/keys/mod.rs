//! Keys and roles: the age identity (restore side), the recipients (everyone), and the
//! *write key* — signing key plus dedup key — that lets a backup host add snapshots without
//! being able to read any.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Prefix of a public signing key as written in configs and `config` objects.
const SIGNER_PREFIX: &str = "ed25519:";

/// Refuse a secret key file that group or others can read (as OpenSSH does).
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| {
        Error::key(
            format!("cannot read the {what} {}: {e}", path.display()),
            hint_for_missing(what),
        )
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::key(
            format!(
                "the {what} {} is readable by group or others (mode {mode:o}); refusing to use it",
                path.display()
            ),
            format!("run: chmod 600 {}", path.display()),
        ));
    }
    Ok(())
}

fn hint_for_missing(what: &str) -> String {
    if what == "identity" {
        "set [repository] identity in the config to the file written by `snapdrill keygen`".into()
    } else {
        "run `snapdrill init` on the backup host, or copy the write key file from it".into()
    }
}

/// Write a secret file with mode 0600, refusing to replace an existing file.
fn write_private_new(path: &Path, content: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Usage(format!(
                    "{} already exists; refusing to overwrite a key",
                    path.display()
                ))
            } else {
                Error::io("creating", path, e)
            }
        })?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing", path, e))
}

pub mod recipient;

pub use recipient::{RecipientKey, fingerprint};

/// The age identities of a restore host: its own keys (X25519, an SSH private key, an age
/// plugin identity) and, once it has opened a repository, the repository's read keys that
/// its own keys unseal (docs/format.md section 5).
pub struct Identities {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    publics: Vec<String>,
    /// Read keys opened so far, by public half. They live as long as the process (a few
    /// per repository), so that [`Identities::as_age`] can lend them without a lock held.
    read: std::sync::Mutex<Vec<(String, &'static age::x25519::Identity)>>,
    /// The file they came from, for messages.
    pub path: PathBuf,
}

/// The environment variable naming a command that prints the passphrase of a
/// passphrase-protected identity file (for cron: a secret manager, a root-only file).
pub const PASSPHRASE_COMMAND: &str = "SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND";

/// Largest identity file, protected or not: identity files are a few lines.
const IDENTITY_LIMIT: u64 = 64 << 10;

/// Asks a person for a secret (the command layer's terminal prompt): given the question,
/// the answer.
pub type Prompt<'a> = &'a dyn Fn(&str) -> std::io::Result<String>;

/// Is `bytes` an age-encrypted file (an identity protected with `age -p`)?
pub fn is_protected(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/v1\n")
}

impl Identities {
    /// Load an identity file as written by `snapdrill keygen` or `age-keygen`, or one
    /// protected with a passphrase (`age -p`), whose passphrase comes from the command in
    /// `$SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND`.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_prompting(path, None)
    }

    /// As [`Identities::load`]; without the passphrase command, a protected identity asks
    /// `prompt` (the command layer's terminal prompt, when there is a terminal).
    pub fn load_prompting(path: &Path, prompt: Option<Prompt>) -> Result<Self> {
        check_private(path, "identity")?;
        let bytes = read_bounded(path)?;
        if !is_protected(&bytes) {
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::key(
                    format!("the identity {} is not text", path.display()),
                    "point [repository] identity at the file written by `snapdrill keygen`",
                )
            })?;
            return Self::parse(&text, path);
        }
        let passphrase = passphrase(path, prompt)?;
        let text = unlock(&bytes, passphrase, path)?;
        Self::parse(&text, path)
    }

    /// Parse identity file text: X25519 secret keys and age plugin identities, one per
    /// line, or an (unencrypted) OpenSSH private key.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let not_identity = |why: String| {
            Error::key(
                format!("{}: {why}", path.display()),
                "point [repository] identity at the file written by `snapdrill keygen` (or an SSH private key whose public key is a recipient)",
            )
        };
        if text.trim_start().starts_with("-----BEGIN") {
            return Self::ssh(text, path).map_err(not_identity);
        }
        let mut ids = Identities::empty(path);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Ok(key) = age::x25519::Identity::from_str(line) {
                ids.publics.push(key.to_public().to_string());
                ids.keys.push(Box::new(key));
            } else if let Ok(key) = age::plugin::Identity::from_str(line) {
                let plugin = age::plugin::IdentityPluginV1::new(
                    key.plugin(),
                    std::slice::from_ref(&key),
                    recipient::PluginMessages,
                )
                .map_err(|_| recipient::plugin_missing(key.plugin(), "the identity"))?;
                ids.keys.push(Box::new(plugin));
            } else {
                return Err(not_identity(format!(
                    "line {}: not an age identity (the secret-key line that `age-keygen` or `snapdrill keygen` writes)",
                    n + 1
                )));
            }
        }
        if ids.keys.is_empty() {
            return Err(not_identity("holds no age identity".into()));
        }
        Ok(ids)
    }

    fn empty(path: &Path) -> Self {
        Identities {
            keys: Vec::new(),
            publics: Vec::new(),
            read: std::sync::Mutex::new(Vec::new()),
            path: path.to_owned(),
        }
    }

    /// An OpenSSH private key (ssh-ed25519 or ssh-rsa) as an identity.
    fn ssh(text: &str, path: &Path) -> std::result::Result<Self, String> {
        let name = path.display().to_string();
        let key = age::ssh::Identity::from_buffer(text.as_bytes(), Some(name))
            .map_err(|e| format!("not a usable SSH private key ({e})"))?;
        match &key {
            age::ssh::Identity::Unencrypted(_) => {}
            age::ssh::Identity::Encrypted(_) => {
                return Err("the SSH private key is encrypted; protect a copy with `age -p` instead (snapdrill asks for that passphrase), or remove the SSH passphrase on the restore host's copy".into());
            }
            age::ssh::Identity::Unsupported(_) => {
                return Err("unsupported SSH key type (use ssh-ed25519 or ssh-rsa)".into());
            }
        }
        let mut ids = Identities::empty(path);
        if let Ok(r) = age::ssh::Recipient::try_from(key.clone()) {
            ids.publics.push(r.to_string());
        }
        ids.keys.push(Box::new(key));
        Ok(ids)
    }

    /// The identities as the age crate wants them: this host's keys, then the read keys
    /// they unsealed.
    pub fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        let read: Vec<&'static age::x25519::Identity> = self
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, k)| *k)
            .collect();
        self.keys
            .iter()
            .map(|k| k.as_ref() as &dyn age::Identity)
            .chain(read.into_iter().map(|k| k as &dyn age::Identity))
    }

    /// The public recipients of these identities (X25519 and SSH keys; a plugin's is known
    /// to its device only).
    pub fn recipients(&self) -> Vec<String> {
        self.publics.clone()
    }

    /// Open the repository's sealed read keys (each an age file holding an X25519 identity)
    /// with this host's keys and keep those that open, so that [`Identities::as_age`]
    /// decrypts what was written to them. Calls add up: stores holding different key
    /// generations (a drill of each store) each bring theirs. How many are held.
    pub fn unlock(&self, sealed: &[Vec<u8>]) -> usize {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        for id in sealed.iter().filter_map(|b| open_read_key(b, &self.keys)) {
            let public = id.to_public().to_string();
            if !read.iter().any(|(p, _)| *p == public) {
                read.push((public, Box::leak(Box::new(id))));
            }
        }
        read.len()
    }

    /// A sealed read key's secret text, when one of this host's own keys opens it (to seal
    /// it again to other recipients).
    pub fn open_read_key(&self, blob: &[u8]) -> Option<age::secrecy::SecretString> {
        open_read_key(blob, &self.keys).map(|id| id.to_string())
    }
}

/// A sealed read key opened with `keys`, if one of them is among its recipients.
fn open_read_key(
    blob: &[u8],
    keys: &[Box<dyn age::Identity + Send + Sync>],
) -> Option<age::x25519::Identity> {
    use std::io::Read;
    let decryptor = age::Decryptor::new_buffered(blob).ok()?;
    let ids = keys.iter().map(|k| k.as_ref() as &dyn age::Identity);
    let mut reader = decryptor.decrypt(ids).ok()?;
    let mut text = String::new();
    (&mut reader).take(4096).read_to_string(&mut text).ok()?;
    age::x25519::Identity::from_str(text.trim()).ok()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(IDENTITY_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            Error::key(
                format!("cannot read the identity {}: {e}", path.display()),
                hint_for_missing("identity"),
            )
        })?;
    if bytes.len() as u64 > IDENTITY_LIMIT {
        return Err(Error::key(
            format!("{} is too large to be an identity file", path.display()),
            "point [repository] identity at the file written by `snapdrill keygen`",
        ));
    }
    Ok(bytes)
}

/// The passphrase of a protected identity: the command's output, else the prompt's answer.
fn passphrase(path: &Path, prompt: Option<Prompt>) -> Result<age::secrecy::SecretString> {
    let missing = |why: String| {
        Error::key(
            format!(
                "the identity {} is protected by a passphrase: {why}",
                path.display()
            ),
            format!(
                "set {PASSPHRASE_COMMAND} to a command that prints it (under cron), or run on a terminal to be asked"
            ),
        )
    };
    if let Some(cmd) = std::env::var_os(PASSPHRASE_COMMAND).filter(|c| !c.is_empty()) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| missing(format!("the passphrase command cannot run: {e}")))?;
        if !out.status.success() {
            return Err(missing(format!(
                "the passphrase command failed ({})",
                out.status
            )));
        }
        let mut text = String::from_utf8(out.stdout)
            .map_err(|_| missing("the passphrase command printed no text".into()))?;
        if text.ends_with('\n') {
            text.pop();
        }
        return Ok(text.into());
    }
    match prompt {
        Some(ask) => ask(&format!("passphrase for the identity {}: ", path.display()))
            .map(Into::into)
            .map_err(|e| missing(format!("no passphrase was read ({e})"))),
        None => Err(missing(format!(
            "{PASSPHRASE_COMMAND} is not set and there is no terminal to ask on"
        ))),
    }
}

/// Decrypt a protected identity file with `passphrase` (scrypt, as `age -p` writes).
fn unlock(bytes: &[u8], passphrase: age::secrecy::SecretString, path: &Path) -> Result<String> {
    use std::io::Read;
    let wrong = |why: String| {
        Error::key(
            format!("cannot unlock the identity {}: {why}", path.display()),
            "check the passphrase (and the passphrase command)",
        )
    };
    let identity = age::scrypt::Identity::new(passphrase);
    let decryptor = age::Decryptor::new_buffered(bytes).map_err(|e| wrong(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                wrong("wrong passphrase".into())
            }
            other => wrong(other.to_string()),
        })?;
    let mut text = String::new();
    (&mut reader)
        .take(IDENTITY_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| wrong(e.to_string()))?;
    Ok(text)
}

/// Most recipients a repository may have (readers refuse objects with many more stanzas:
/// see `sealing::MAX_STANZAS`).
pub const MAX_RECIPIENTS: usize = 64;

/// Parse the configured recipients (see [`recipient::parse_all`]).
pub fn parse_recipients(list: &[String]) -> Result<Vec<RecipientKey>> {
    recipient::parse_all(list)
}

/// Generate a fresh read key: an X25519 identity as text, and its recipient.
pub fn generate_read_key() -> (age::secrecy::SecretString, age::x25519::Recipient) {
    let id = age::x25519::Identity::generate();
    (id.to_string(), id.to_public())
}

/// Generate a new identity, write it to `path` (mode 0600) and return its recipient.
pub fn keygen(path: &Path) -> Result<String> {
    let (text, recipient) = generate_identity();
    write_private_new(path, &text)?;
    Ok(recipient)
}

/// A fresh identity as file text, and its recipient.
pub fn generate_identity() -> (String, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let text = format!(
        "# snapdrill identity: decrypts every snapshot encrypted to it. Keep it offline and safe.\n\
         # created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    (text, recipient)
}

/// Format a public signing key for configs.
pub fn signer_to_string(key: &VerifyingKey) -> String {
    format!("{SIGNER_PREFIX}{}", B64.encode(key.as_bytes()))
}

/// Parse a public signing key written by [`signer_to_string`].
pub fn parse_signer(s: &str) -> Result<VerifyingKey, String> {
    let b64 = s
        .trim()
        .strip_prefix(SIGNER_PREFIX)
        .ok_or_else(|| format!("signer '{s}' does not start with '{SIGNER_PREFIX}'"))?;
    let bytes: [u8; 32] = B64
        .decode(b64)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("signer '{s}' is not 32 bytes of base64"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| format!("signer '{s}' is not an Ed25519 key"))
}

/// The secrets a backup host needs to write into a repository: they sign and name data but
/// cannot decrypt anything.
pub struct WriteKey {
    /// The repository these keys belong to.
    pub repository_id: String,
    /// Signs `config` and every commit.
    pub signing: SigningKey,
    /// Keys chunk names and the chunker.
    pub dedup: [u8; 32],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteKeyFile {
    repository_id: String,
    signing_key: String,
    dedup_key: String,
}

impl WriteKey {
    /// Fresh keys for a new repository.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut dedup = [0u8; 32];
        rng.fill_bytes(&mut dedup);
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        WriteKey {
            repository_id: hex::encode(id),
            signing: SigningKey::from_bytes(&seed),
            dedup,
        }
    }

    /// The public half of the signing key, to pin in configs.
    pub fn signer(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Load a write key file, refusing unsafe permissions.
    pub fn load(path: &Path) -> Result<Self> {
        check_private(path, "write key")?;
        let text = fs::read_to_string(path).map_err(|e| {
            Error::key(
                format!("cannot read the write key {}: {e}", path.display()),
                hint_for_missing("write key"),
            )
        })?;
        let bad = |why: String| {
            Error::key(
                format!(
                    "{} is not a valid snapdrill write key: {why}",
                    path.display()
                ),
                "restore the file from the backup host's own backup, or run `snapdrill init` for a new repository",
            )
        };
        let file: WriteKeyFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let decode32 = |s: &str, what: &str| -> Result<[u8; 32]> {
            B64.decode(s)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad(format!("{what} is not 32 bytes of base64")))
        };
        Ok(WriteKey {
            repository_id: file.repository_id,
            signing: SigningKey::from_bytes(&decode32(&file.signing_key, "signing_key")?),
            dedup: decode32(&file.dedup_key, "dedup_key")?,
        })
    }

    /// Write the key file (mode 0600); never overwrites.
    pub fn save(&self, path: &Path) -> Result<()> {
        let body = toml::to_string(&WriteKeyFile {
            repository_id: self.repository_id.clone(),
            signing_key: B64.encode(self.signing.to_bytes()),
            dedup_key: B64.encode(self.dedup),
        })
        .map_err(|e| Error::fatal(format!("cannot encode the write key: {e}")))?;
        let text = format!(
            "# snapdrill write key for repository {}.\n\
             # SECRET: it lets its holder add snapshots (sign) and name chunks (dedup).\n\
             # It cannot decrypt anything. Keep a copy with your disaster-recovery kit.\n{body}",
            self.repository_id
        );
        write_private_new(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An identity file protected with `passphrase` as `age -p` writes it (scrypt), with
    /// a low work factor so that the test is quick.
    fn protected_identity(dir: &Path, passphrase: &str) -> (PathBuf, String) {
        use std::io::Write as _;
        let (text, recipient) = generate_identity();
        let mut r = age::scrypt::Recipient::new(passphrase.to_owned().into());
        r.set_work_factor(10);
        let enc =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap();
        let path = dir.join("protected.age");
        fs::write(&path, out).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        (path, recipient)
    }

    #[test]
    fn a_passphrase_protected_identity_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let (path, recipient) = protected_identity(dir.path(), "correct horse");
        let ask = |_: &str| Ok("correct horse".to_owned());
        let ids = Identities::load_prompting(&path, Some(&ask)).unwrap();
        assert_eq!(ids.recipients(), vec![recipient]);
        let wrong = |_: &str| Ok("battery staple".to_owned());
        let err = Identities::load_prompting(&path, Some(&wrong))
            .err()
            .unwrap();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        if std::env::var_os(PASSPHRASE_COMMAND).is_none() {
            let err = Identities::load(&path).err().unwrap();
            assert!(
                err.to_string().contains("protected by a passphrase"),
                "{err}"
            );
            assert!(err.hint().unwrap().contains(PASSPHRASE_COMMAND));
        }
    }

    #[test]
    fn read_keys_opened_in_separate_calls_add_up() {
        use std::io::Write as _;
        let (text, recipient) = generate_identity();
        let ids = Identities::parse(&text, Path::new("test")).unwrap();
        let to = age::x25519::Recipient::from_str(&recipient).unwrap();
        let seal = |secret: &str| {
            let enc = age::Encryptor::with_recipients(std::iter::once(&to as &dyn age::Recipient))
                .unwrap();
            let mut out = Vec::new();
            let mut w = enc.wrap_output(&mut out).unwrap();
            w.write_all(secret.as_bytes()).unwrap();
            w.finish().unwrap();
            out
        };
        let (r1, _) = generate_read_key();
        let (r2, _) = generate_read_key();
        assert_eq!(ids.unlock(&[seal(r1.expose_secret())]), 1);
        assert_eq!(
            ids.unlock(&[seal(r1.expose_secret()), seal(r2.expose_secret())]),
            2
        );
        assert_eq!(ids.as_age().count(), 3, "own key and two read keys");
        assert_eq!(ids.unlock(&[b"not age".to_vec()]), 2);
    }

    #[test]
    fn signer_round_trip() {
        let key = WriteKey::generate();
        let s = signer_to_string(&key.signer());
        assert_eq!(parse_signer(&s).unwrap(), key.signer());
        assert!(parse_signer("ed25519:AAAA").is_err());
        assert!(parse_signer("rsa:AAAA").is_err());
    }

    #[test]
    fn key_files_are_private_and_refused_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id.txt");
        let recipient = keygen(&id).unwrap();
        assert!(recipient.starts_with("age1"));
        assert_eq!(
            fs::metadata(&id).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let ids = Identities::load(&id).unwrap();
        assert_eq!(ids.recipients(), vec![recipient]);
        assert!(keygen(&id).is_err(), "keygen must not overwrite");

        fs::set_permissions(&id, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Identities::load(&id).err().unwrap();
        assert_eq!(err.exit_code(), 12);
        assert!(err.to_string().contains("readable by group or others"));

        let wk = dir.path().join("write.key");
        let key = WriteKey::generate();
        key.save(&wk).unwrap();
        let back = WriteKey::load(&wk).unwrap();
        assert_eq!(back.signer(), key.signer());
        assert_eq!(back.dedup, key.dedup);
        fs::set_permissions(&wk, fs::Permissions::from_mode(0o604)).unwrap();
        assert!(WriteKey::load(&wk).is_err());
    }
}
