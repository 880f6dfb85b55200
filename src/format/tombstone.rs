//! The tombstone `forget` leaves for a snapshot: signed proof that the snapshot was removed
//! on purpose (docs/format.md section 10). An attacker holding only a store's credentials can
//! delete a commit but cannot sign a tombstone, so audit tells retention from deletion.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::check_version;
use super::commit::{DataSet, ObjectRef};
use super::signed::{self, Role};

const FORMAT: &str = "snapdrill-tombstone";

/// Largest tombstone object a reader accepts.
pub const LIMIT: u64 = 64 << 10;

/// The body of `forgotten/<snapshot-id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// `snapdrill-tombstone`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The repository.
    pub repository_id: String,
    /// The forgotten snapshot.
    pub snapshot_id: String,
    /// When the snapshot was taken (from its commit).
    pub snapshot_time: String,
    /// The host that made the snapshot.
    pub host: String,
    /// The snapshot's job, copied from its commit (absent for a version-1 commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The snapshot's source identity, copied from its commit (absent for version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The commit object as it was, so audits can match ledger entries.
    pub commit: ObjectRef,
    /// When it was forgotten (UTC, the forgetting host's clock).
    pub forgotten_at: String,
    /// Why: the retention rule that did not keep it, or `by id`.
    pub reason: String,
}

impl Tombstone {
    /// A new tombstone body.
    pub fn new(
        repository_id: &str,
        snapshot_id: &str,
        snapshot_time: &str,
        set: &DataSet,
        commit: ObjectRef,
        forgotten_at: &str,
        reason: &str,
    ) -> Self {
        Tombstone {
            format: FORMAT.into(),
            version: super::V1,
            repository_id: repository_id.into(),
            snapshot_id: snapshot_id.into(),
            snapshot_time: snapshot_time.into(),
            host: set.host.clone(),
            job: set.job.clone(),
            source: set.source.clone(),
            commit,
            forgotten_at: forgotten_at.into(),
            reason: reason.into(),
        }
    }

    /// The data set of the forgotten snapshot, as its commit named it.
    pub fn data_set(&self) -> DataSet {
        DataSet {
            host: self.host.clone(),
            job: self.job.clone(),
            source: self.source.clone(),
        }
    }

    /// Serialize and sign.
    pub fn to_object(&self, key: &SigningKey) -> Vec<u8> {
        let body = serde_json::to_vec_pretty(self).expect("tombstone serializes");
        signed::sign(&body, Role::Tombstone, key)
    }

    /// Verify and parse the object `tombstone_object(expected_id)`.
    pub fn from_object(
        object: &[u8],
        pinned: &(impl signed::Trust + ?Sized),
        repository_id: &str,
        expected_id: &str,
    ) -> Result<Self, String> {
        if object.len() as u64 > LIMIT {
            return Err("tombstone object too large".into());
        }
        let (body, until) =
            signed::verify_trusted(object, Role::Tombstone, pinned).map_err(|e| e.to_string())?;
        let t: Tombstone =
            serde_json::from_slice(body).map_err(|e| format!("unreadable tombstone: {e}"))?;
        check_version("tombstone", &t.format, FORMAT, t.version, super::V1)?;
        if t.repository_id != repository_id {
            return Err(format!("belongs to repository {}", t.repository_id));
        }
        if t.snapshot_id != expected_id || t.commit.name != super::commit_object(expected_id) {
            return Err(format!(
                "is the tombstone of snapshot {} replayed under the name {expected_id}",
                t.snapshot_id
            ));
        }
        if let Some(until) = until
            && super::parse_time(&t.forgotten_at).is_none_or(|at| at >= until)
        {
            return Err("is signed by a retired write key and dated after its retirement".into());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_replay() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let id = "20261128T032718Z-9f2c1a7b";
        let t = Tombstone::new(
            &"00".repeat(16),
            id,
            "2026-11-28T03:27:18Z",
            &DataSet {
                host: "host".into(),
                job: Some("exports".into()),
                source: Some("ab".repeat(16)),
            },
            ObjectRef {
                name: crate::format::commit_object(id),
                size: 10,
                sha256: "11".repeat(32),
            },
            "2026-12-01T00:00:00Z",
            "keep-last 3",
        );
        let obj = t.to_object(&key);
        let back =
            Tombstone::from_object(&obj, &key.verifying_key(), &"00".repeat(16), id).unwrap();
        assert_eq!(back, t);
        let err = Tombstone::from_object(
            &obj,
            &key.verifying_key(),
            &"00".repeat(16),
            "20261129T032718Z-00000000",
        )
        .unwrap_err();
        assert!(err.contains("replayed"), "{err}");
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(
            Tombstone::from_object(&obj, &other.verifying_key(), &"00".repeat(16), id).is_err()
        );
        // A commit's signature does not make a tombstone: the role is bound in.
        let mut forged = obj.clone();
        forged[5] ^= 1;
        assert!(
            Tombstone::from_object(&forged, &key.verifying_key(), &"00".repeat(16), id).is_err()
        );
    }
}
