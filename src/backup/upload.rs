//! Seal once, write everywhere: new chunks are compressed, checked and encrypted once on the
//! CPU pool, then uploaded to every store with bounded concurrency per store. A store that
//! fails is dropped from this run (it will not get the commit); the others go on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::join_all;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::format;
use crate::memory::Budget;
use crate::sealing;
use crate::store::{self, StoreRef};

/// Ciphertext allowed to wait for the stores: 64 MiB hides the stores' write latency
/// (fsync, network; `make bench`: a budget of 32 MiB of plaintext made three stores 1.3x
/// slower than one).
const CIPHER_BYTES: usize = 64 << 20;
/// Plaintext allowed between the reader and the sealers, per core: enough for each core
/// to seal one average chunk (2 MiB) with one more queued behind it. More only holds
/// memory: plaintext waits here for a core, never for a store.
const PLAIN_BYTES_PER_CPU: usize = 4 << 20;
/// The plaintext budget never drops below one largest chunk (8 MiB) plus a queued one.
const PLAIN_BYTES_MIN: usize = 16 << 20;
/// Concurrent copies between stores (copying chunks one store lacks).
pub const COPIES_IN_FLIGHT: usize = 8;

/// A chunk sealed and uploaded by this run.
#[derive(Debug, Clone)]
pub struct SealedChunk {
    /// Plaintext size.
    pub plain_size: u64,
    /// Ciphertext size.
    pub size: u64,
    /// Ciphertext SHA-256.
    pub sha256: [u8; 32],
    /// Bit `i`: is the object now in store `i`? (A backup has at most 64 stores.)
    pub stored: u64,
}

impl SealedChunk {
    /// Is the object now in store `i`?
    pub fn in_store(&self, i: usize) -> bool {
        self.stored & (1 << i) != 0
    }
}

/// Shared per-store state of a run.
#[derive(Debug)]
pub struct StoreStates {
    failed: Mutex<Vec<Option<String>>>,
    uploaded: Mutex<Vec<(u64, u64)>>,
}

impl StoreStates {
    /// All stores healthy.
    pub fn new(n: usize) -> Self {
        StoreStates {
            failed: Mutex::new(vec![None; n]),
            uploaded: Mutex::new(vec![(0, 0); n]),
        }
    }

    /// Drop a store from this run, keeping the first reason.
    pub fn fail(&self, i: usize, reason: String) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if f[i].is_none() {
            f[i] = Some(reason);
        }
    }

    /// Why a store was dropped, if it was.
    pub fn failure(&self, i: usize) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())[i].clone()
    }

    /// Is the store still in the run?
    pub fn healthy(&self, i: usize) -> bool {
        self.failure(i).is_none()
    }

    /// Count an upload.
    pub fn count_upload(&self, i: usize, bytes: u64) {
        let mut u = self.uploaded.lock().unwrap_or_else(|p| p.into_inner());
        u[i].0 += 1;
        u[i].1 += bytes;
    }

    /// Objects and bytes uploaded to a store.
    pub fn uploaded(&self, i: usize) -> (u64, u64) {
        self.uploaded.lock().unwrap_or_else(|p| p.into_inner())[i]
    }
}

/// Seals and uploads the new chunks of a backup.
pub struct Uploader {
    stores: Vec<StoreRef>,
    recipients: Arc<Vec<age::x25519::Recipient>>,
    level: i32,
    cpu: Arc<Semaphore>,
    /// Plaintext read and not yet sealed (the reader's backpressure).
    plain: Budget,
    /// Ciphertext sealed and not yet in every store.
    cipher: Budget,
    per_store: Vec<Arc<Semaphore>>,
    /// Shared store health.
    pub states: Arc<StoreStates>,
    /// Chunks some store listed at the start.
    present: Arc<super::Listed>,
    /// Chunks this run is sealing or uploading; once done they are in `sealed` instead, so
    /// no id is held twice (at 20 GB, half a MB).
    in_flight: HashSet<[u8; 32]>,
    tasks: JoinSet<Result<([u8; 32], SealedChunk)>>,
    /// Chunks sealed by this run, by id: no string per chunk, so a long run leaves no
    /// small allocations scattered through the heap.
    pub sealed: HashMap<[u8; 32], SealedChunk>,
    trim: crate::memory::Trim,
}

impl Uploader {
    /// A new uploader; `present` holds the ids some store already has.
    pub(super) fn new(
        stores: Vec<StoreRef>,
        recipients: Vec<age::x25519::Recipient>,
        level: i32,
        present: Arc<super::Listed>,
        states: Arc<StoreStates>,
    ) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let per_store = stores
            .iter()
            .map(|s| Arc::new(Semaphore::new(s.concurrency().max(1))))
            .collect();
        Uploader {
            stores,
            recipients: Arc::new(recipients),
            level,
            cpu: Arc::new(Semaphore::new(cpus)),
            plain: Budget::new((cpus * PLAIN_BYTES_PER_CPU).max(PLAIN_BYTES_MIN)),
            cipher: Budget::new(CIPHER_BYTES),
            per_store,
            states,
            present,
            in_flight: HashSet::new(),
            tasks: JoinSet::new(),
            sealed: HashMap::new(),
            trim: crate::memory::Trim::default(),
        }
    }

    /// The plaintext budget, which the reader draws on for every chunk it sends.
    pub(super) fn plain_budget(&self) -> Budget {
        self.plain.clone()
    }

    /// Take a chunk from the reader, with its share of the plaintext budget: new ones are
    /// sealed and uploaded in the background, and return the share once sealed.
    pub async fn submit(
        &mut self,
        id: [u8; 32],
        data: Vec<u8>,
        plain: OwnedSemaphorePermit,
    ) -> Result<()> {
        if self.present.present(&id) || self.sealed.contains_key(&id) || !self.in_flight.insert(id)
        {
            return Ok(()); // deduplicated
        }
        let ctx = TaskCtx {
            stores: self.stores.clone(),
            recipients: self.recipients.clone(),
            level: self.level,
            cpu: self.cpu.clone(),
            cipher: self.cipher.clone(),
            per_store: self.per_store.clone(),
            states: self.states.clone(),
        };
        self.tasks
            .spawn(async move { ctx.seal_and_upload(id, data, plain).await });
        while let Some(done) = self.tasks.try_join_next() {
            self.collect(done)?;
        }
        Ok(())
    }

    fn collect(
        &mut self,
        done: std::result::Result<Result<([u8; 32], SealedChunk)>, tokio::task::JoinError>,
    ) -> Result<()> {
        let (id, chunk) = done.map_err(|e| Error::fatal(format!("upload task failed: {e}")))??;
        self.in_flight.remove(&id);
        self.sealed.insert(id, chunk);
        self.trim.chunk_done();
        Ok(())
    }

    /// Number of stores in the run.
    pub fn states_len(&self) -> usize {
        self.stores.len()
    }

    /// Wait for every upload.
    pub async fn finish(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.join_next().await {
            self.collect(done)?;
        }
        Ok(())
    }
}

struct TaskCtx {
    stores: Vec<StoreRef>,
    recipients: Arc<Vec<age::x25519::Recipient>>,
    level: i32,
    cpu: Arc<Semaphore>,
    cipher: Budget,
    per_store: Vec<Arc<Semaphore>>,
    states: Arc<StoreStates>,
}

impl TaskCtx {
    /// Seal `data` (its plaintext budget is `plain`, returned once it is sealed), then put
    /// it in every store within the ciphertext budget.
    async fn seal_and_upload(
        self,
        id: [u8; 32],
        data: Vec<u8>,
        plain: OwnedSemaphorePermit,
    ) -> Result<([u8; 32], SealedChunk)> {
        let id_hex = hex::encode(id);
        let plain_size = data.len() as u64;
        let sealed = {
            let _cpu = self
                .cpu
                .acquire()
                .await
                .map_err(|_| Error::fatal("cpu pool closed"))?;
            let (level, recipients) = (self.level, self.recipients.clone());
            tokio::task::spawn_blocking(move || sealing::seal(&data, level, &recipients))
                .await
                .map_err(|e| Error::fatal(format!("sealing task failed: {e}")))?
                .map_err(|e| Error::fatal(format!("chunk {id_hex}: {e}; nothing was committed")))?
        };
        let _cipher = self
            .cipher
            .take(sealed.len())
            .await
            .ok_or_else(|| Error::fatal("upload pipeline closed"))?;
        drop(plain);
        let bytes = Bytes::from(sealed);
        let name = format::chunk_object(&id_hex);
        // The first healthy store decides which encryption of this chunk the repository
        // keeps: if another backup of the same data created it there first, its bytes are
        // adopted and copied to the other stores, so concurrent writers never leave two
        // different encryptions in two stores.
        let n = self.stores.len();
        let mut placed: Vec<Option<store::Placed>> = vec![None; n];
        let mut canonical = bytes;
        if let Some(first) = (0..n).find(|&i| self.states.healthy(i)) {
            placed[first] = self.place(first, &name, canonical.clone()).await;
            if let Some(store::Placed::Theirs(t)) = &placed[first] {
                canonical = t.clone();
            }
            let this = &self;
            let rest = (0..n)
                .filter(|&i| i != first)
                .map(|i| this.place(i, &name, canonical.clone()));
            for (i, p) in (0..n).filter(|&i| i != first).zip(join_all(rest).await) {
                placed[i] = p;
            }
        }
        let (bytes, stored) = self.settle(&name, canonical, placed);
        let stored = (0..n).filter(|&i| stored[i]).fold(0, |m, i| m | 1 << i);
        Ok((
            id,
            SealedChunk {
                plain_size,
                size: bytes.len() as u64,
                sha256: sealing::sha256(&bytes),
                stored,
            },
        ))
    }

    /// Create `bytes` under `name` in store `i`; `None` when the store is (or becomes) failed.
    async fn place(&self, i: usize, name: &str, bytes: Bytes) -> Option<store::Placed> {
        if !self.states.healthy(i) {
            return None;
        }
        let _slot = self.per_store[i].acquire().await;
        let limit = format::limits::CHUNK + format::limits::SEAL_OVERHEAD;
        let n = bytes.len() as u64;
        match store::put_create_or_existing(self.stores[i].as_ref(), name, bytes, limit).await {
            Ok(placed) => {
                if placed == store::Placed::Ours(store::Created::Written) {
                    self.states.count_upload(i, n);
                }
                Some(placed)
            }
            Err(e) => {
                self.states.fail(i, e.to_string());
                None
            }
        }
    }

    /// Decide which ciphertext the commit names when another backup of the same data created
    /// the chunk first in some stores (sealing is randomised, so its bytes differ from ours).
    /// Nothing is overwritten: the copy most stores hold wins, and a store holding the other
    /// copy leaves this run (a later `sync` or backup heals it).
    fn settle(
        &self,
        name: &str,
        ours: Bytes,
        placed: Vec<Option<store::Placed>>,
    ) -> (Bytes, Vec<bool>) {
        let holds = |b: &Bytes| -> Vec<bool> {
            placed
                .iter()
                .map(|p| match p {
                    Some(store::Placed::Ours(_)) => *b == ours,
                    Some(store::Placed::Theirs(t)) => t == b,
                    None => false,
                })
                .collect()
        };
        let mut best = (ours.clone(), holds(&ours));
        for p in placed.iter().flatten() {
            if let store::Placed::Theirs(t) = p {
                let h = holds(t);
                if h.iter().filter(|x| **x).count() > best.1.iter().filter(|x| **x).count() {
                    best = (t.clone(), h);
                }
            }
        }
        for (i, p) in placed.iter().enumerate() {
            if p.is_some() && !best.1[i] {
                self.states.fail(
                    i,
                    format!(
                        "store '{}', object '{name}': another backup of the same data stored a different encryption of this chunk at the same time; this store is left out of this run (the next backup or `snapdrill sync` completes it)",
                        self.stores[i].name()
                    ),
                );
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::{Location, open};
    use crate::store::retry::Tuning;

    async fn submit(up: &mut Uploader, id: [u8; 32], data: &[u8]) {
        let share = up.plain_budget().take(data.len()).await.expect("open");
        up.submit(id, data.to_vec(), share).await.unwrap();
    }

    /// A chunk met again after its upload finished is not sealed and sent again: done
    /// chunks leave the in-flight set for `sealed`, and both are asked.
    #[tokio::test]
    async fn a_chunk_met_again_after_its_upload_is_not_uploaded_twice() {
        let loc = Location::Memory("upload-twice".into());
        let store = open("m", &loc, &Default::default(), Tuning::default(), false).unwrap();
        let recipient = age::x25519::Identity::generate().to_public();
        let states = Arc::new(StoreStates::new(1));
        let mut up = Uploader::new(vec![store], vec![recipient], 3, Arc::default(), states);
        let (a, b) = ([1; 32], [2; 32]);
        submit(&mut up, a, b"first chunk").await;
        submit(&mut up, a, b"first chunk").await; // while in flight
        up.finish().await.unwrap();
        submit(&mut up, a, b"first chunk").await; // once sealed
        assert!(up.tasks.is_empty(), "a sealed chunk was scheduled again");
        submit(&mut up, b, b"second chunk").await;
        up.finish().await.unwrap();
        assert_eq!(up.states.uploaded(0).0, 2, "one upload per distinct chunk");
        assert_eq!(up.sealed.len(), 2);
        assert!(up.in_flight.is_empty());
    }
}
