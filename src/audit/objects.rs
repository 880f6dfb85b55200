//! One store's objects against its verified commits: present, at the signed size, manifests
//! with the signed SHA-256; and the objects no commit explains (unreferenced, unknown).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::survey::{Class, Surveyed, classify};
use super::{AuditOptions, Finding, FindingKind, Findings};

use crate::format::chunk_list::{Chunk, ChunkIndex, ChunkList, Objects};
use crate::format::commit::ObjectRef;
use crate::format::{self};

/// Manifest reads in flight per store.
const READS: usize = 8;

/// What the object checks of one store found.
pub(super) struct Checked {
    pub objects_checked: u64,
    pub manifests_verified: u64,
    pub in_flight: u64,
    pub findings: Findings,
}

/// An object the store's commits need.
struct Need<'a> {
    object: Needed<'a>,
    /// The first snapshot (by id) that lists it.
    snapshot: &'a str,
    /// How many snapshots list it.
    count: usize,
}

/// A needed object: a chunk or list by handle (its name is made only when it is reported;
/// a million names and hash strings took ~230 MB), a manifest by its commit's reference.
#[derive(Clone, Copy)]
enum Needed<'a> {
    Chunk(Chunk),
    List(Chunk),
    Manifest(&'a ObjectRef),
}

impl<'a> Needed<'a> {
    fn of(chunk: Chunk) -> Needed<'a> {
        match chunk.get().is_list() {
            true => Needed::List(chunk),
            false => Needed::Chunk(chunk),
        }
    }

    fn name(self) -> String {
        match self {
            Needed::Chunk(c) | Needed::List(c) => c.name(),
            Needed::Manifest(m) => m.name.clone(),
        }
    }

    fn size(self) -> u64 {
        match self {
            Needed::Chunk(c) | Needed::List(c) => c.size(),
            Needed::Manifest(m) => m.size,
        }
    }

    /// The order of the objects' names without making them: `chunks/` before `lists/`
    /// before `manifests/`, and within chunks and lists, names follow their ids.
    fn by_name(self, other: Self, objects: &Objects) -> std::cmp::Ordering {
        let rank = |n: Self| match n {
            Needed::Chunk(_) => 0,
            Needed::List(_) => 1,
            Needed::Manifest(_) => 2,
        };
        match (self, other) {
            (Needed::Chunk(a), Needed::Chunk(b)) | (Needed::List(a), Needed::List(b)) => {
                objects.get(a).id.cmp(&objects.get(b).id)
            }
            (Needed::Manifest(a), Needed::Manifest(b)) => a.name.cmp(&b.name),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

/// Sort `items` as the names of their objects would sort.
fn sort_by_name<'a, T>(items: &mut [T], needed: impl Fn(&T) -> Needed<'a>) {
    let objects = Chunk::objects();
    items.sort_unstable_by(|a, b| needed(a).by_name(needed(b), &objects));
}

/// Every object the verified commits name: chunks and object lists by their 32-byte id, a
/// 4-byte handle each in a [`ChunkIndex`] (a map of names and hash strings took ~300 bytes
/// an object, a map of ids ~80: a million-chunk repository's audit held 300 MB, then
/// 78 MB of it), manifests by name.
#[derive(Debug, Default)]
pub(super) struct Referenced {
    objects: ChunkIndex,
    manifests: BTreeMap<String, ObjectRef>,
}

impl Referenced {
    /// The reference of the object named `name`, if a commit names it.
    pub(super) fn get(&self, name: &str) -> Option<ObjectRef> {
        if let Some(m) = self.manifests.get(name) {
            return Some(m.clone());
        }
        self.objects.get(name).map(Chunk::to_ref)
    }

    /// The object named `name` as a candidate for a read, if a commit names it.
    pub(super) fn candidate(&self, name: &str) -> Option<Candidate> {
        match self.manifests.get(name) {
            Some(m) => Some(Candidate::Manifest(Box::new(m.clone()))),
            None => self.objects.get(name).map(Candidate::Object),
        }
    }

    /// Does a commit name the object `name`? (A chunk's name never stands for a list, nor
    /// a list's for a chunk.)
    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.manifests.contains_key(name) || self.objects.get(name).is_some()
    }

    /// Every referenced object, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = ObjectRef> + '_ {
        (self.objects.iter().map(|c| c.to_ref())).chain(self.manifests.values().cloned())
    }
}

/// Every object any verified commit of any store lists; commits that disagree about an
/// object (only possible with the signing key) are problems. Each distinct list is read
/// once, however many snapshots name it: the work follows the unique objects.
pub(super) fn referenced(stores: &[Surveyed], out: &mut Findings) -> Referenced {
    let mut parts: HashSet<*const ChunkList> = HashSet::new();
    let mut all = Referenced::default();
    let mut disagree = |store: &str, id: &str, o: &ObjectRef, known: &ObjectRef| {
        out.problems.push(Finding::new(
            store,
            &o.name,
            FindingKind::CommitsDisagree,
            format!(
                "snapshot {id} lists it at {} bytes, SHA-256 {}; another commit at {} bytes, SHA-256 {}",
                o.size, o.sha256, known.size, known.sha256
            ),
        ));
    };
    for s in stores {
        for (id, sc) in &s.commits {
            let c = &sc.commit;
            all.objects
                .add_set(c.object_set(), &mut parts, |chunk, known| {
                    disagree(s.store.name(), id, &chunk.to_ref(), &known.to_ref())
                });
            let m = &c.manifest;
            let known = all
                .manifests
                .entry(m.name.clone())
                .or_insert_with(|| m.clone());
            if known != m {
                disagree(s.store.name(), id, m, known);
            }
        }
    }
    all
}

/// The objects a store's commits need, by name.
fn needs(s: &Surveyed) -> Vec<Need<'_>> {
    // How many snapshots name each list (the first by id), then each chunk: a commit's
    // lists do not overlap, so a chunk's count is the sum over the lists holding it.
    let mut parts: HashMap<*const ChunkList, (&ChunkList, &str, usize)> = HashMap::new();
    let mut needs: Vec<Need> = Vec::new();
    for (id, sc) in &s.commits {
        for p in sc.commit.object_set().parts() {
            parts.entry(Arc::as_ptr(p)).or_insert((p, id.as_str(), 0)).2 += 1;
        }
        needs.push(Need {
            object: Needed::Manifest(&sc.commit.manifest),
            snapshot: id,
            count: 1,
        });
    }
    let mut chunks: HashMap<Chunk, (&str, usize)> = HashMap::new();
    for (part, snapshot, count) in parts.into_values() {
        for chunk in part.iter() {
            let e = chunks.entry(chunk).or_insert((snapshot, 0));
            e.0 = e.0.min(snapshot);
            e.1 += count;
        }
    }
    needs.extend(chunks.into_iter().map(|(chunk, (snapshot, count))| Need {
        object: Needed::of(chunk),
        snapshot,
        count,
    }));
    sort_by_name(&mut needs, |n| n.object);
    needs
}

/// An object a store's commits list and it holds at the signed size: what `--read-data`
/// may read and what coverage counts. 16 bytes; its name and hash strings are made only
/// when it is read or looked up (a million `ObjectRef`s took ~220 MB a store).
#[derive(Debug, Clone)]
pub(super) enum Candidate {
    /// A chunk or an object list.
    Object(Chunk),
    Manifest(Box<ObjectRef>),
}

impl Candidate {
    pub(super) fn name(&self) -> String {
        match self {
            Candidate::Object(c) => c.name(),
            Candidate::Manifest(m) => m.name.clone(),
        }
    }

    pub(super) fn size(&self) -> u64 {
        match self {
            Candidate::Object(c) => c.size(),
            Candidate::Manifest(m) => m.size,
        }
    }

    pub(super) fn to_ref(&self) -> ObjectRef {
        match self {
            Candidate::Object(c) => c.to_ref(),
            Candidate::Manifest(m) => (**m).clone(),
        }
    }
}

/// The objects the store's commits list that it holds at the signed size, in name order.
pub(super) fn present_needs(s: &Surveyed) -> Vec<Candidate> {
    needs(s)
        .into_iter()
        .filter(|n| s.listing.get(&n.object.name()).map(|l| l.size) == Some(n.object.size()))
        .map(|n| match n.object {
            Needed::Chunk(c) | Needed::List(c) => Candidate::Object(c),
            Needed::Manifest(m) => Candidate::Manifest(Box::new(m.clone())),
        })
        .collect()
}

/// The objects of forgotten snapshots whose commits are still there, in any store: they wait
/// for prune, which collects them with their snapshot.
pub(super) fn awaiting_prune(stores: &[Surveyed]) -> std::collections::BTreeSet<String> {
    let commits = || stores.iter().flat_map(|s| s.leftovers.values());
    let mut parts: HashSet<*const ChunkList> = HashSet::new();
    let chunks: HashSet<Chunk> = commits()
        .flat_map(|sc| sc.commit.object_set().parts())
        .filter(|p| parts.insert(Arc::as_ptr(p)))
        .flat_map(|p| p.iter())
        .collect();
    chunks
        .into_iter()
        .map(|c| c.name())
        .chain(commits().map(|sc| sc.commit.manifest.name.clone()))
        .collect()
}

/// Every check of one store that needs no data reads beyond its manifests.
pub(super) async fn check_store(
    s: &Surveyed,
    referenced: &Referenced,
    awaiting: &std::collections::BTreeSet<String>,
    now: SystemTime,
    opts: &AuditOptions,
) -> Checked {
    let needs = needs(s);
    let mut findings = Findings::default();
    presence(s, &needs, &mut findings);
    let manifests_verified = verify_manifests(s, &mut findings).await;
    let explained = Explained {
        referenced,
        awaiting,
        now,
        grace: opts.grace,
    };
    let in_flight = extras(s, &explained, opts.writer_timeout, &mut findings);
    Checked {
        objects_checked: (needs.len() + s.commits.len()) as u64,
        manifests_verified,
        in_flight,
        findings,
    }
}

fn needed_by(n: &Need) -> String {
    match n.count {
        1 => format!("snapshot {} needs it", n.snapshot),
        more => format!(
            "snapshot {} and {} other snapshots need it",
            n.snapshot,
            more - 1
        ),
    }
}

/// Each needed object present at its signed size; a fossil stands in for a missing chunk.
fn presence(s: &Surveyed, needs: &[Need], out: &mut Findings) {
    let store = s.store.name();
    for n in needs {
        let name = &n.object.name();
        let (kind, detail) = match s.listing.get(name) {
            Some(l) if l.size == n.object.size() => continue,
            Some(l) => (
                FindingKind::WrongSize,
                format!(
                    "wrong size: {} bytes, the signed commit says {} ({})",
                    l.size,
                    n.object.size(),
                    needed_by(n)
                ),
            ),
            None if s.listing.contains_key(&format::fossil_object(name)) => {
                out.warnings.push(Finding::new(
                    store,
                    name,
                    FindingKind::Fossilized,
                    format!(
                        "fossilized while referenced — the next prune or backup restores it ({})",
                        needed_by(n)
                    ),
                ));
                continue;
            }
            None => (FindingKind::Missing, format!("missing: {}", needed_by(n))),
        };
        out.problems.push(Finding::new(store, name, kind, detail));
    }
}

/// Read each manifest present at its signed size and check its SHA-256.
async fn verify_manifests(s: &Surveyed, out: &mut Findings) -> u64 {
    let manifests: Vec<&ObjectRef> = s
        .commits
        .values()
        .map(|sc| &sc.commit.manifest)
        .filter(|m| s.listing.get(&m.name).map(|l| l.size) == Some(m.size))
        .collect();
    let store = &s.store;
    let results: Vec<Option<Finding>> = futures::stream::iter(manifests)
        .map(|m| async move {
            match store.get(&m.name, m.size).await {
                Ok(bytes) if m.matches(&bytes) => None,
                Ok(bytes) => Some(Finding::new(
                    store.name(),
                    &m.name,
                    FindingKind::HashMismatch,
                    format!(
                        "content ({} bytes) does not match the SHA-256 in the signed commit",
                        bytes.len()
                    ),
                )),
                Err(e) => Some(Finding::new(
                    store.name(),
                    &m.name,
                    FindingKind::Unreadable,
                    format!("listed but unreadable: {}", e.message),
                )),
            }
        })
        .buffer_unordered(READS)
        .collect()
        .await;
    let verified = results.iter().filter(|r| r.is_none()).count() as u64;
    out.problems.extend(results.into_iter().flatten());
    verified
}

/// The oldest live `writers/` marker (name, time); dead ones are warned about.
fn oldest_live_writer(
    s: &Surveyed,
    now: SystemTime,
    timeout: Duration,
    out: &mut Findings,
) -> Option<(String, SystemTime)> {
    let mut oldest: Option<(String, SystemTime)> = None;
    for (key, l) in s
        .listing
        .others()
        .filter(|(k, _)| classify(k) == Class::Writer)
    {
        let age = now.duration_since(l.modified).unwrap_or_default();
        if age >= timeout {
            out.warnings.push(Finding::new(
                s.store.name(),
                key,
                FindingKind::DeadWriter,
                format!(
                    "a backup began {} and never finished (older than [prune] writer_timeout)",
                    humantime::format_rfc3339_seconds(l.modified)
                ),
            ));
        } else if oldest.as_ref().is_none_or(|(_, t)| l.modified < *t) {
            oldest = Some((key.to_owned(), l.modified));
        }
    }
    oldest
}

/// What makes an unreferenced object expected rather than a problem.
struct Explained<'a> {
    referenced: &'a Referenced,
    awaiting: &'a std::collections::BTreeSet<String>,
    now: SystemTime,
    grace: Duration,
}

/// Objects no commit explains: unknown names are problems; unreferenced chunks and
/// manifests are problems unless a running backup may have uploaded them, they belong to a
/// forgotten snapshot prune has yet to collect, or they are younger than prune's grace
/// period. Returns how many are in flight.
fn extras(s: &Surveyed, e: &Explained<'_>, timeout: Duration, out: &mut Findings) -> u64 {
    let store = s.store.name();
    let writer = oldest_live_writer(s, e.now, timeout, out);
    let mut in_flight = 0;
    let (mut awaiting, mut young) = (0u64, 0u64);
    for (key, l) in s.listing.iter() {
        let key = &*key;
        match classify(key) {
            Class::Unknown => out.problems.push(Finding::new(
                store,
                key,
                FindingKind::Unknown,
                "extra: not an object of the repository layout",
            )),
            Class::Chunk | Class::Manifest if !e.referenced.contains_key(key) => {
                if writer.as_ref().is_some_and(|(_, t)| l.modified >= *t) {
                    in_flight += 1;
                } else if e.awaiting.contains(key) {
                    awaiting += 1;
                } else if e.now.duration_since(l.modified).unwrap_or_default() <= e.grace {
                    young += 1;
                } else {
                    out.problems.push(Finding::new(
                        store,
                        key,
                        FindingKind::Unreferenced,
                        "unreferenced and older than the grace period: no snapshot needs it; `snapdrill prune` removes it",
                    ));
                }
            }
            _ => {}
        }
    }
    if awaiting + young > 0 {
        out.warnings.push(Finding::new(
            store,
            format::CHUNKS_PREFIX,
            FindingKind::AwaitingPrune,
            format!(
                "{awaiting} objects of forgotten snapshots and {young} unreferenced objects younger than the grace period wait for `snapdrill prune`"
            ),
        ));
    }
    if let (Some((marker, began)), true) = (writer, in_flight > 0) {
        out.warnings.push(Finding::new(
            store,
            &marker,
            FindingKind::InFlight,
            format!(
                "{in_flight} unreferenced objects are in flight: uploaded since a backup that is still running began ({})",
                humantime::format_rfc3339_seconds(began)
            ),
        ));
    }
    in_flight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chunk_list::ChunkObject;

    #[test]
    fn needs_sort_as_their_names_do_without_making_them() {
        let object = |seed: u8, list: bool| {
            let id = [seed.wrapping_mul(37), seed, 0xa5, seed ^ 0x5a]
                .iter()
                .cycle()
                .take(32)
                .copied()
                .collect::<Vec<u8>>()
                .try_into()
                .unwrap();
            let sha256 = if list { id } else { [seed; 32] };
            Chunk::intern(ChunkObject {
                id,
                sha256,
                size: u64::from(seed),
            })
        };
        let manifests: Vec<ObjectRef> = ["manifests/b", "manifests/a"]
            .iter()
            .map(|n| ObjectRef {
                name: n.to_string(),
                size: 1,
                sha256: "00".repeat(32),
            })
            .collect();
        let mut needed: Vec<Needed> = (0..=255u8)
            .step_by(7)
            .map(|s| Needed::of(object(s, s % 3 == 0)))
            .chain(manifests.iter().map(Needed::Manifest))
            .collect();
        sort_by_name(&mut needed, |n| *n);
        let names: Vec<String> = needed.iter().map(|n| n.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.iter().any(|n| n.starts_with("lists/")));
        assert!(names.iter().any(|n| n.starts_with("chunks/")));
    }
}
