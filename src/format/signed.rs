//! Signed documents: a JSON body, then one signature line (docs/format.md section 6).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

const LINE_TAG: &str = "snapdrill-signature-v1";

/// What a signature is for; bound into the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The repository `config` object.
    RepositoryConfig,
    /// A snapshot commit.
    Snapshot,
    /// A tombstone left by `forget`.
    Tombstone,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::RepositoryConfig => "repository-config",
            Role::Snapshot => "snapshot",
            Role::Tombstone => "tombstone",
        }
    }
}

/// Why a signed document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The object is not shaped like a signed document.
    #[error("not a signed snapdrill document: {0}")]
    Malformed(&'static str),
    /// Signed by a key other than the pinned signer.
    #[error("signed by {found}, not by the pinned signer {pinned}")]
    WrongSigner {
        /// The key in the signature line.
        found: String,
        /// The key the reader trusts.
        pinned: String,
    },
    /// The signature does not verify: the document was altered or forged.
    #[error("the signature does not verify: the document was altered or forged")]
    Invalid,
}

fn message(role: Role, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 48);
    m.extend_from_slice(LINE_TAG.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(role.as_str().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m
}

/// Sign `body` (JSON text without trailing newline) for `role`; returns the object bytes.
pub fn sign(body: &[u8], role: Role, key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&message(role, body));
    let line = format!(
        "{LINE_TAG} ed25519 {} {}\n",
        B64.encode(key.verifying_key().as_bytes()),
        B64.encode(sig.to_bytes())
    );
    let mut out = Vec::with_capacity(body.len() + line.len() + 1);
    out.extend_from_slice(body);
    out.push(b'\n');
    out.extend_from_slice(line.as_bytes());
    out
}

/// Split a signed document and verify it against the pinned signer; returns the body.
pub fn verify<'a>(
    object: &'a [u8],
    role: Role,
    pinned: &VerifyingKey,
) -> Result<&'a [u8], SignatureError> {
    let (body, key, sig) = split(object)?;
    if key != *pinned {
        return Err(SignatureError::WrongSigner {
            found: crate::keys::signer_to_string(&key),
            pinned: crate::keys::signer_to_string(pinned),
        });
    }
    key.verify(&message(role, body), &sig)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(body)
}

/// The keys a reader accepts for commits and tombstones: the pinned one, and — after the
/// write key was rotated — earlier signers, each for documents dated before its `until`.
pub trait Trust {
    /// `Some(None)`: `key` is trusted without limit; `Some(Some(t))`: for documents dated
    /// before `t`; `None`: not trusted.
    fn accepts(&self, key: &VerifyingKey) -> Option<Option<std::time::SystemTime>>;
    /// The current signer (for messages).
    fn current(&self) -> &VerifyingKey;
}

impl Trust for VerifyingKey {
    fn accepts(&self, key: &VerifyingKey) -> Option<Option<std::time::SystemTime>> {
        (key == self).then_some(None)
    }
    fn current(&self) -> &VerifyingKey {
        self
    }
}

/// The current signer and the retired ones with the end of their overlap window.
#[derive(Debug, Clone)]
pub struct Signers {
    /// Signs everything new.
    pub current: VerifyingKey,
    /// Retired signers: accepted for documents dated before each one's time.
    pub previous: Vec<(VerifyingKey, std::time::SystemTime)>,
}

impl Trust for Signers {
    fn accepts(&self, key: &VerifyingKey) -> Option<Option<std::time::SystemTime>> {
        if *key == self.current {
            return Some(None);
        }
        self.previous
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, until)| Some(*until))
    }
    fn current(&self) -> &VerifyingKey {
        &self.current
    }
}

/// Verify a document against every key `trust` accepts; the body, and the date before
/// which the document must be dated when a retired signer signed it.
pub fn verify_trusted<'a>(
    object: &'a [u8],
    role: Role,
    trust: &(impl Trust + ?Sized),
) -> Result<(&'a [u8], Option<std::time::SystemTime>), SignatureError> {
    let (body, key, sig) = split(object)?;
    let Some(until) = trust.accepts(&key) else {
        return Err(SignatureError::WrongSigner {
            found: crate::keys::signer_to_string(&key),
            pinned: crate::keys::signer_to_string(trust.current()),
        });
    };
    key.verify(&message(role, body), &sig)
        .map_err(|_| SignatureError::Invalid)?;
    Ok((body, until))
}

/// The public key a document claims to be signed by (not verified).
pub fn claimed_signer(object: &[u8]) -> Result<VerifyingKey, SignatureError> {
    split(object).map(|(_, key, _)| key)
}

fn split(object: &[u8]) -> Result<(&[u8], VerifyingKey, Signature), SignatureError> {
    let without_final = object
        .strip_suffix(b"\n")
        .ok_or(SignatureError::Malformed("no final newline"))?;
    let cut = without_final
        .iter()
        .rposition(|&b| b == b'\n')
        .ok_or(SignatureError::Malformed("no signature line"))?;
    let (body, line) = (&without_final[..cut], &without_final[cut + 1..]);
    let line = std::str::from_utf8(line)
        .map_err(|_| SignatureError::Malformed("signature line is not UTF-8"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() != 4 || fields[0] != LINE_TAG || fields[1] != "ed25519" {
        return Err(SignatureError::Malformed("bad signature line"));
    }
    let key: [u8; 32] = B64
        .decode(fields[2])
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(SignatureError::Malformed("bad public key"))?;
    let key =
        VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::Malformed("bad public key"))?;
    let sig: [u8; 64] = B64
        .decode(fields[3])
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(SignatureError::Malformed("bad signature"))?;
    Ok((body, key, Signature::from_bytes(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let obj = sign(br#"{"a":1}"#, Role::Snapshot, &k);
        assert!(obj.ends_with(b"\n"));
        let body = verify(&obj, Role::Snapshot, &k.verifying_key()).unwrap();
        assert_eq!(body, br#"{"a":1}"#);
    }

    #[test]
    fn role_signer_and_bytes_are_bound() {
        let k = key(1);
        let obj = sign(br#"{"a":1}"#, Role::Snapshot, &k);
        assert_eq!(
            verify(&obj, Role::RepositoryConfig, &k.verifying_key()),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify(&obj, Role::Snapshot, &key(2).verifying_key()),
            Err(SignatureError::WrongSigner { .. })
        ));
        let mut altered = obj.clone();
        altered[5] = b'2';
        assert_eq!(
            verify(&altered, Role::Snapshot, &k.verifying_key()),
            Err(SignatureError::Invalid)
        );
        // A forger who signs with their own key but claims ours fails too.
        let forged = sign(br#"{"a":1}"#, Role::Snapshot, &key(3));
        let s = String::from_utf8(forged).unwrap().replace(
            &B64.encode(key(3).verifying_key().as_bytes()),
            &B64.encode(k.verifying_key().as_bytes()),
        );
        assert_eq!(
            verify(s.as_bytes(), Role::Snapshot, &k.verifying_key()),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify(b"{}\n", Role::Snapshot, &k.verifying_key()),
            Err(SignatureError::Malformed(_))
        ));
    }
}
