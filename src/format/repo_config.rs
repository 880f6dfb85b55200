//! The repository config object (docs/format.md section 5).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::signed::{self, Role, SignatureError};
use super::{check_version, limits};
use crate::keys::{RecipientKey, WriteKey, signer_to_string};
use crate::sealing::{self, SealError};

const FORMAT: &str = "snapdrill-repository";

/// FastCDC parameters, fixed for the life of a repository so that chunks deduplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    /// Always `fastcdc-2020` in version 1.
    pub algorithm: ChunkAlgorithm,
    /// Smallest chunk, except the last one of a segment.
    pub min_size: u32,
    /// Target average chunk size.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
}

/// The content-defined chunking algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkAlgorithm {
    /// FastCDC, 2020 paper, normalization level 1, keyed gear table.
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            algorithm: ChunkAlgorithm::FastCdc2020,
            min_size: 512 << 10,
            avg_size: 2 << 20,
            max_size: 8 << 20,
        }
    }
}

/// The body of the `config` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoConfig {
    /// `snapdrill-repository`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// 16 random bytes, hex.
    pub repository_id: String,
    /// When `init` created the repository.
    pub created: String,
    /// The public key that signs this document and every commit.
    pub signer: String,
    /// Chunker parameters.
    pub chunking: Chunking,
    /// `hmac-sha256`.
    pub chunk_id: String,
    /// `zstd`.
    pub compression: String,
    /// `age-v1`.
    pub encryption: String,
    /// The dedup key, age-encrypted to the recipients, base64.
    pub dedup_key: String,
    /// Version 3: the key generation, 1 at `init`, one more at each `keys` or `rekey`
    /// change. Readers use the config of the highest generation any store holds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// Version 3: the people and escrow keys the read keys and the dedup key are sealed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientEntry>,
    /// Version 3: the read keys, oldest first; objects are encrypted to the last one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_keys: Vec<ReadKey>,
    /// Version 3: what the change that wrote this generation did, for `keys history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Version 3: write keys rotated away, each accepted for commits and tombstones dated
    /// before its `until` (the overlap window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_signers: Vec<PreviousSigner>,
    /// Version 3: the last retired signer's endorsement of `signer`, so that a host still
    /// pinning the retired key follows the rotation until the window ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
}

/// A retired write key's public half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSigner {
    /// `ed25519:…`.
    pub signer: String,
    /// When it was retired.
    pub retired: String,
    /// Until when documents it signed are accepted (dated before this).
    pub until: String,
}

/// A retired signer's signature over its successor (docs/format.md section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The retired signer (`ed25519:…`).
    pub from: String,
    /// Ed25519 signature, base64, by `from` over [`handover_message`].
    pub signature: String,
}

/// What a retired signer signs to hand over to `signer` until `until`.
pub fn handover_message(repository_id: &str, signer: &str, until: &str) -> Vec<u8> {
    format!("snapdrill handover v1\n{repository_id}\n{signer}\n{until}\n").into_bytes()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The config version that carries read keys (docs/format.md section 5).
pub const VERSION: u32 = 3;

/// One recipient of the repository, and when it was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientEntry {
    /// As written in configs (`age1…`, `ssh-ed25519 AAAA…`, `age1yubikey1…`).
    pub recipient: String,
    /// When it was added (RFC 3339).
    pub added: String,
}

/// A read key: an X25519 key pair whose public half encrypts objects and whose secret half
/// is sealed to the recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadKey {
    /// The public half (`age1…`).
    pub recipient: String,
    /// The secret half (its secret-key line, as `age-keygen` writes one), age-encrypted to the recipients,
    /// base64.
    pub sealed: String,
    /// When it was made.
    pub created: String,
}

impl ReadKey {
    /// A new read key sealed to `to`, made at `created`, and its public half.
    pub fn fresh(
        to: &[RecipientKey],
        created: &str,
    ) -> crate::error::Result<(ReadKey, age::x25519::Recipient)> {
        let (secret, public) = crate::keys::generate_read_key();
        Ok((Self::seal(&secret, &public, to, created)?, public))
    }

    /// Seal `secret` (whose public half is `public`) to `to`.
    pub fn seal(
        secret: &age::secrecy::SecretString,
        public: &age::x25519::Recipient,
        to: &[RecipientKey],
        created: &str,
    ) -> crate::error::Result<ReadKey> {
        use age::secrecy::ExposeSecret;
        let sealed = sealing::encrypt_to_keys(secret.expose_secret().as_bytes(), to)?;
        Ok(ReadKey {
            recipient: public.to_string(),
            sealed: B64.encode(sealed),
            created: created.to_owned(),
        })
    }
}

/// Why a config object was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigObjectError {
    /// Bad or foreign signature.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Unreadable body or unsupported content.
    #[error("{0}")]
    Invalid(String),
    /// Signed by a successor of the pinned signer whose handover window has ended: the
    /// host must pin the new signer.
    #[error("{0}")]
    Rotated(String),
}

impl RepoConfig {
    /// A new config (version 3, generation 1) for the repository of `key`: a first read
    /// key, and it and the dedup key sealed to `recipients`.
    pub fn new(
        key: &WriteKey,
        recipients: &[RecipientKey],
        created: std::time::SystemTime,
    ) -> crate::error::Result<Self> {
        let created = super::format_time(created);
        let (read_key, _) = ReadKey::fresh(recipients, &created)?;
        let config = RepoConfig {
            format: FORMAT.into(),
            version: VERSION,
            repository_id: key.repository_id.clone(),
            created: created.clone(),
            signer: signer_to_string(&key.signer()),
            chunking: Chunking::default(),
            chunk_id: "hmac-sha256".into(),
            compression: "zstd".into(),
            encryption: "age-v1".into(),
            dedup_key: String::new(),
            generation: 0,
            recipients: Vec::new(),
            read_keys: vec![read_key],
            change: None,
            previous_signers: Vec::new(),
            handover: None,
        };
        let entries = recipients
            .iter()
            .map(|r| RecipientEntry {
                recipient: r.text().to_owned(),
                added: created.clone(),
            })
            .collect();
        config.successor(
            key,
            entries,
            recipients,
            config.read_keys.clone(),
            "init".into(),
        )
    }

    /// The next generation of this config: `recipients` (parsed as `keys`), `read_keys`,
    /// the dedup key sealed again to `keys`, and what changed.
    pub fn successor(
        &self,
        key: &WriteKey,
        recipients: Vec<RecipientEntry>,
        keys: &[RecipientKey],
        read_keys: Vec<ReadKey>,
        change: String,
    ) -> crate::error::Result<Self> {
        let sealed = sealing::encrypt_to_keys(&key.dedup, keys)?;
        Ok(RepoConfig {
            version: VERSION,
            dedup_key: B64.encode(sealed),
            generation: self.generation + 1,
            recipients,
            read_keys,
            change: Some(change),
            ..self.clone()
        })
    }

    /// The next generation signed by `new` instead of `old`: `old` retired now and
    /// accepted for documents dated before `until`, with its handover to `new`.
    pub fn rotated(
        &self,
        old: &WriteKey,
        new: &WriteKey,
        until: std::time::SystemTime,
    ) -> RepoConfig {
        use ed25519_dalek::Signer;
        let now = super::format_time(std::time::SystemTime::now());
        let until = super::format_time(until);
        let signer = signer_to_string(&new.signer());
        let from = signer_to_string(&old.signer());
        let signature = old
            .signing
            .sign(&handover_message(&self.repository_id, &signer, &until));
        let mut previous = self.previous_signers.clone();
        previous.push(PreviousSigner {
            signer: from.clone(),
            retired: now,
            until,
        });
        RepoConfig {
            version: VERSION,
            generation: self.generation + 1,
            signer,
            previous_signers: previous,
            handover: Some(Handover {
                from,
                signature: B64.encode(signature.to_bytes()),
            }),
            change: Some(format!(
                "write key rotated to {}",
                signer_to_string(&new.signer())
            )),
            ..self.clone()
        }
    }

    /// The signers commits and tombstones may carry: the current one, and each retired
    /// one until its window ends.
    pub fn signers(&self) -> Result<super::signed::Signers, String> {
        let current = crate::keys::parse_signer(&self.signer)?;
        let mut previous = Vec::new();
        for p in &self.previous_signers {
            let key = crate::keys::parse_signer(&p.signer)?;
            let until = super::parse_time(&p.until)
                .ok_or_else(|| format!("previous signer {}: bad time {}", p.signer, p.until))?;
            previous.push((key, until));
        }
        Ok(super::signed::Signers { current, previous })
    }

    /// Verify a `config` object for a host that pins `pinned`: signed by it, or by its
    /// successor with a handover from it whose window has not ended. The config, and a
    /// warning to re-pin when the handover was followed.
    pub fn from_object_following(
        object: &[u8],
        pinned: &VerifyingKey,
        now: std::time::SystemTime,
    ) -> Result<(Self, Option<String>), ConfigObjectError> {
        let claimed = super::signed::claimed_signer(object)?;
        if claimed == *pinned {
            return Ok((Self::from_object(object, pinned)?, None));
        }
        let config = Self::from_object(object, &claimed)?;
        let pinned_text = signer_to_string(pinned);
        let refused = |why: &str| {
            ConfigObjectError::Invalid(format!(
                "signed by {}, not by the pinned signer {pinned_text}{why}",
                config.signer
            ))
        };
        let Some(h) = config.handover.as_ref().filter(|h| h.from == pinned_text) else {
            return Err(refused(""));
        };
        let until = config
            .previous_signers
            .iter()
            .find(|p| p.signer == pinned_text)
            .and_then(|p| super::parse_time(&p.until).map(|t| (t, p.until.clone())));
        let Some((until_time, until)) = until else {
            return Err(refused(" (its handover names no window)"));
        };
        let signature = B64
            .decode(&h.signature)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok());
        let message = handover_message(&config.repository_id, &config.signer, &until);
        let genuine = signature
            .is_some_and(|sig| ed25519_dalek::Verifier::verify(pinned, &message, &sig).is_ok());
        if !genuine {
            return Err(refused(" (its handover does not verify)"));
        }
        if now >= until_time {
            return Err(ConfigObjectError::Rotated(format!(
                "the write key this host pins ({pinned_text}) was rotated to {}, and its handover ended at {until}: set `signer = \"{}\"` under [repository]",
                config.signer, config.signer
            )));
        }
        let note = format!(
            "the repository's write key was rotated: the pinned signer {pinned_text} handed over to {} until {until}; set `signer = \"{}\"` under [repository] in this host's config",
            config.signer, config.signer
        );
        Ok((config, Some(note)))
    }

    /// The key objects are encrypted to: the newest read key (version 3). `None` for a
    /// repository of version 1 or 2, whose objects are encrypted to the recipients.
    pub fn write_recipient(&self) -> Option<age::x25519::Recipient> {
        let last = self.read_keys.last()?;
        std::str::FromStr::from_str(&last.recipient).ok()
    }

    /// The sealed read keys, for [`crate::keys::Identities::unlock`].
    pub fn sealed_read_keys(&self) -> Vec<Vec<u8>> {
        self.read_keys
            .iter()
            .filter_map(|k| B64.decode(&k.sealed).ok())
            .collect()
    }

    /// The recipients this config records (empty before version 3).
    pub fn recipient_texts(&self) -> Vec<String> {
        self.recipients
            .iter()
            .map(|r| r.recipient.clone())
            .collect()
    }

    /// Serialize and sign.
    pub fn to_object(&self, key: &WriteKey) -> Vec<u8> {
        let body = serde_json::to_vec_pretty(self).expect("config serializes");
        signed::sign(&body, Role::RepositoryConfig, &key.signing)
    }

    /// Verify against the pinned signer, then parse and check.
    pub fn from_object(object: &[u8], pinned: &VerifyingKey) -> Result<Self, ConfigObjectError> {
        if object.len() as u64 > limits::CONFIG_OBJECT {
            return Err(ConfigObjectError::Invalid("config object too large".into()));
        }
        let body = signed::verify(object, Role::RepositoryConfig, pinned)?;
        let config: RepoConfig = serde_json::from_slice(body)
            .map_err(|e| ConfigObjectError::Invalid(format!("unreadable config: {e}")))?;
        check_version(
            "repository config",
            &config.format,
            FORMAT,
            config.version,
            VERSION,
        )
        .map_err(ConfigObjectError::Invalid)?;
        config.check().map_err(ConfigObjectError::Invalid)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let c = &self.chunking;
        let ok = c.min_size >= 64
            && c.min_size <= c.avg_size
            && c.avg_size <= c.max_size
            && u64::from(c.max_size) <= limits::CHUNK
            && c.avg_size >= 256
            && c.min_size.is_multiple_of(2)
            && c.avg_size.is_multiple_of(2)
            && c.max_size.is_multiple_of(2);
        if !ok {
            return Err(format!("unsupported chunking parameters {c:?}"));
        }
        if self.chunk_id != "hmac-sha256"
            || self.compression != "zstd"
            || self.encryption != "age-v1"
        {
            return Err("unsupported chunk_id, compression or encryption".into());
        }
        if !super::is_hex(&self.repository_id, 32) {
            return Err("bad repository_id".into());
        }
        if self.version >= VERSION {
            let bad_key = self.read_keys.iter().any(|k| {
                <age::x25519::Recipient as std::str::FromStr>::from_str(&k.recipient).is_err()
            });
            if self.recipients.is_empty() || self.read_keys.is_empty() || bad_key {
                return Err("a version 3 config needs recipients and valid read keys".into());
            }
        }
        Ok(())
    }

    /// Decrypt the dedup key with the identity.
    pub fn dedup_key<'a>(
        &self,
        identities: impl Iterator<Item = &'a dyn age::Identity>,
    ) -> Result<[u8; 32], SealError> {
        let sealed = B64
            .decode(&self.dedup_key)
            .map_err(|_| SealError::Decrypt("dedup_key is not base64".into()))?;
        sealing::decrypt(&sealed, identities, 32)?
            .try_into()
            .map_err(|_| SealError::Decrypt("dedup_key is not 32 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip_and_dedup_key() {
        let key = WriteKey::generate();
        let id = age::x25519::Identity::generate();
        let to = crate::keys::RecipientKey::parse(&id.to_public().to_string()).unwrap();
        let config = RepoConfig::new(&key, &[to], std::time::SystemTime::now()).unwrap();
        assert_eq!((config.version, config.generation), (VERSION, 1));
        let object = config.to_object(&key);
        let back = RepoConfig::from_object(&object, &key.signer()).unwrap();
        assert_eq!(back.repository_id, key.repository_id);
        let ids = [&id as &dyn age::Identity];
        assert_eq!(back.dedup_key(ids.into_iter()).unwrap(), key.dedup);
        let other = WriteKey::generate();
        assert!(RepoConfig::from_object(&object, &other.signer()).is_err());
    }
}
