//! The repository config object (docs/format.md section 5).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::signed::{self, Role, SignatureError};
use super::{check_version, limits};
use crate::keys::{WriteKey, signer_to_string};
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
}

impl RepoConfig {
    /// A new config for the repository of `key`, encrypted to `recipients`.
    pub fn new(
        key: &WriteKey,
        recipients: &[age::x25519::Recipient],
        created: std::time::SystemTime,
    ) -> Result<Self, SealError> {
        let sealed_key = sealing::encrypt(&key.dedup, recipients)?;
        Ok(RepoConfig {
            format: FORMAT.into(),
            version: super::V1,
            repository_id: key.repository_id.clone(),
            created: super::format_time(created),
            signer: signer_to_string(&key.signer()),
            chunking: Chunking::default(),
            chunk_id: "hmac-sha256".into(),
            compression: "zstd".into(),
            encryption: "age-v1".into(),
            dedup_key: B64.encode(sealed_key),
        })
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
            super::V1,
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
        let config =
            RepoConfig::new(&key, &[id.to_public()], std::time::SystemTime::now()).unwrap();
        let object = config.to_object(&key);
        let back = RepoConfig::from_object(&object, &key.signer()).unwrap();
        assert_eq!(back.repository_id, key.repository_id);
        let ids = [&id as &dyn age::Identity];
        assert_eq!(back.dedup_key(ids.into_iter()).unwrap(), key.dedup);
        let other = WriteKey::generate();
        assert!(RepoConfig::from_object(&object, &other.signer()).is_err());
    }
}
