//! The walk's output: every item in walk order, kept in memory (tests, a dry run) or
//! spooled to an unlinked temporary file (a backup), so that a backup of a million files
//! holds none of them while it reads — the items are read back one at a time in order.
//!
//! The spool is private to the process (`O_TMPFILE`-style: created 0600 and unlinked at
//! once, in `TMPDIR`); it holds the walk's paths and metadata, nothing of the files'
//! content, and disappears with the process whatever way it ends.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::sync::Arc;

use super::{Item, Meta, SourceFile, SourceRoot};
use crate::format::manifest::WirePath;

/// The items of a walk, in walk order.
#[derive(Debug, Default)]
pub struct Items {
    memory: Vec<Item>,
    disk: Option<Disk>,
    len: u64,
    /// The first write that failed: reported when the items are read back.
    failed: Option<io::Error>,
    /// The standard input's name in the snapshot, and the first walked path it collides
    /// with (checked as the walk goes: the walk is not held to be searched afterwards).
    watch: Option<(Vec<u8>, Option<String>)>,
    /// Bytes of the walked files.
    bytes: u64,
}

#[derive(Debug)]
struct Disk {
    out: BufWriter<File>,
    roots: Vec<Arc<SourceRoot>>,
}

impl Items {
    /// Items spooled to a new unlinked temporary file.
    pub fn on_disk() -> io::Result<Items> {
        let file = tempfile::tempfile()?;
        Ok(Items {
            disk: Some(Disk {
                out: BufWriter::with_capacity(256 << 10, file),
                roots: Vec::new(),
            }),
            ..Items::default()
        })
    }

    /// Watch for walked paths colliding with `name` (the standard input's name).
    pub fn watching(mut self, name: &[u8]) -> Items {
        self.watch = Some((name.to_vec(), None));
        self
    }

    /// The first walked path the watched name collides with: the same path, a path below
    /// it, or a file or symlink on its way.
    pub fn clash(&self) -> Option<&str> {
        self.watch.as_ref()?.1.as_deref()
    }

    /// Bytes of the walked files (the backup's total, for its progress).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Add the next item.
    pub fn push(&mut self, item: Item) {
        self.len += 1;
        if let Item::File { meta, .. } = &item {
            self.bytes = self.bytes.saturating_add(meta.size);
        }
        if let Some((name, clash @ None)) = &mut self.watch {
            *clash = clashing(name, &item);
        }
        let Some(disk) = &mut self.disk else {
            self.memory.push(item);
            return;
        };
        if self.failed.is_none()
            && let Err(e) = disk.write(&item)
        {
            self.failed = Some(e);
        }
    }

    /// How many items were walked.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Nothing was walked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items, in walk order; a spool that could not be written is an error here.
    pub fn read_back(self) -> io::Result<ItemsBack> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.disk {
            None => Ok(ItemsBack::Memory(self.memory.into_iter())),
            Some(disk) => {
                let mut file = disk.out.into_inner().map_err(|e| e.into_error())?;
                file.rewind()?;
                Ok(ItemsBack::Disk {
                    from: BufReader::with_capacity(256 << 10, file),
                    roots: disk.roots,
                    left: self.len,
                })
            }
        }
    }

    /// The items as a vector (tests and the dry run, which lists every file anyway).
    pub fn into_vec(self) -> io::Result<Vec<Item>> {
        self.read_back()?.collect()
    }
}

/// The items read back, one at a time.
pub enum ItemsBack {
    /// Kept in memory.
    Memory(std::vec::IntoIter<Item>),
    /// From the spool.
    Disk {
        /// The spool.
        from: BufReader<File>,
        /// The source roots, by the index the spool records.
        roots: Vec<Arc<SourceRoot>>,
        /// Items not yet read.
        left: u64,
    },
}

impl Iterator for ItemsBack {
    type Item = io::Result<Item>;

    fn next(&mut self) -> Option<io::Result<Item>> {
        match self {
            ItemsBack::Memory(items) => items.next().map(Ok),
            ItemsBack::Disk { from, roots, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(read_item(from, roots))
            }
        }
    }
}

/// `item`'s path, when a file at `name` could not be beside it.
fn clashing(name: &[u8], item: &Item) -> Option<String> {
    let (path, dir) = match item {
        Item::Dir { path, .. } => (path, true),
        Item::File { path, .. } | Item::Symlink { path, .. } => (path, false),
    };
    let below =
        |p: &[u8], top: &[u8]| p.len() > top.len() && p.starts_with(top) && p[top.len()] == b'/';
    let p = &path.0[..];
    (p == name || below(p, name) || (!dir && below(name, p))).then(|| path.display())
}

const DIR: u8 = 0;
const FILE: u8 = 1;
const SYMLINK: u8 = 2;

impl Disk {
    /// One record: kind, metadata, snapshot path, then the source (files) or target
    /// (symlinks).
    fn write(&mut self, item: &Item) -> io::Result<()> {
        let (kind, path, meta) = match item {
            Item::Dir { path, meta } => (DIR, path, meta),
            Item::File { path, meta, .. } => (FILE, path, meta),
            Item::Symlink { path, meta, .. } => (SYMLINK, path, meta),
        };
        self.out.write_all(&[kind])?;
        write_meta(&mut self.out, meta)?;
        write_bytes(&mut self.out, &path.0)?;
        match item {
            Item::Dir { .. } => Ok(()),
            Item::File { src, .. } => {
                let root = self.root_index(&src.root);
                self.out.write_all(&root.to_le_bytes())?;
                write_bytes(&mut self.out, &src.rel)
            }
            Item::Symlink { target, .. } => write_bytes(&mut self.out, &target.0),
        }
    }

    /// The index of a source root (a walk has one per source).
    fn root_index(&mut self, root: &Arc<SourceRoot>) -> u32 {
        match self.roots.iter().rposition(|r| Arc::ptr_eq(r, root)) {
            Some(i) => i as u32,
            None => {
                self.roots.push(root.clone());
                (self.roots.len() - 1) as u32
            }
        }
    }
}

fn write_meta(out: &mut impl Write, m: &Meta) -> io::Result<()> {
    out.write_all(&m.mode.to_le_bytes())?;
    out.write_all(&m.mtime.to_le_bytes())?;
    out.write_all(&m.mtime_ns.to_le_bytes())?;
    out.write_all(&m.size.to_le_bytes())?;
    out.write_all(&m.ino.to_le_bytes())?;
    out.write_all(&m.ctime.to_le_bytes())?;
    out.write_all(&m.ctime_ns.to_le_bytes())?;
    out.write_all(&m.dev.to_le_bytes())
}

fn write_bytes(out: &mut impl Write, b: &[u8]) -> io::Result<()> {
    let len = u32::try_from(b.len()).map_err(|_| io::Error::other("a path over 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(b)
}

fn read_item(from: &mut impl Read, roots: &[Arc<SourceRoot>]) -> io::Result<Item> {
    let kind = take::<1>(from)?[0];
    let meta = read_meta(from)?;
    let path = WirePath(read_bytes(from)?);
    match kind {
        DIR => Ok(Item::Dir { path, meta }),
        FILE => {
            let root = u32::from_le_bytes(take(from)?) as usize;
            let root = roots
                .get(root)
                .cloned()
                .ok_or_else(|| io::Error::other("the walk spool names an unknown root"))?;
            let rel = read_bytes(from)?;
            Ok(Item::File {
                path,
                src: SourceFile { root, rel },
                meta,
            })
        }
        SYMLINK => Ok(Item::Symlink {
            path,
            target: WirePath(read_bytes(from)?),
            meta,
        }),
        _ => Err(io::Error::other("the walk spool is damaged")),
    }
}

fn take<const N: usize>(from: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0; N];
    from.read_exact(&mut b)?;
    Ok(b)
}

fn read_meta(from: &mut impl Read) -> io::Result<Meta> {
    Ok(Meta {
        mode: u32::from_le_bytes(take(from)?),
        mtime: i64::from_le_bytes(take(from)?),
        mtime_ns: u32::from_le_bytes(take(from)?),
        size: u64::from_le_bytes(take(from)?),
        ino: u64::from_le_bytes(take(from)?),
        ctime: i64::from_le_bytes(take(from)?),
        ctime_ns: u32::from_le_bytes(take(from)?),
        dev: u64::from_le_bytes(take(from)?),
    })
}

fn read_bytes(from: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = u32::from_le_bytes(take(from)?) as usize;
    let mut b = vec![0; len];
    from.read_exact(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spooled_walk_reads_back_as_the_walk_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("exports");
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join("a.csv"), "x\n").unwrap();
        std::fs::write(root.join("b/c"), "yy").unwrap();
        std::os::unix::fs::symlink("../a.csv", root.join("b/link")).unwrap();
        let ex = super::super::Excludes::new(&[]).unwrap();
        let memory = super::super::walk(std::slice::from_ref(&root), &ex).unwrap();
        let spooled =
            super::super::walk_into(std::slice::from_ref(&root), &ex, Items::on_disk().unwrap())
                .unwrap();
        assert_eq!(spooled.items.len(), 5);
        let show = |items: Vec<Item>| format!("{items:?}");
        assert_eq!(
            show(spooled.items.into_vec().unwrap()),
            show(memory.items.into_vec().unwrap())
        );
    }
}
