//! A minimal POSIX tar (pax interchange format) writer for `dump`: ustar headers, with a
//! pax extended header in front of an entry whenever ustar cannot say it exactly — a path
//! or link target longer than 100 bytes, a size of 8 GiB or more, a modification time
//! outside ustar's range or with nanoseconds. GNU tar, bsdtar and busybox read it.
//!
//! Written by hand rather than with a crate because `dump` streams content chunk by chunk
//! after the header, which is all a writer has to do; reading archives (where tar crates
//! had their path-traversal bugs) is not done here at all.
//!
//! Owners are not in snapshots: entries are written as uid/gid 0 with no user or group
//! name, so `tar -x` run by a user makes them that user's, and run by root, root's.
//! Setuid and setgid bits are dropped, as a restore drops them.

use std::fmt::Write as _;

use crate::format::manifest::EntryKind;
use crate::restore::fs::MODE_MASK;

/// A tar block.
pub(super) const BLOCK: usize = 512;

/// Largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o77_777_777_777;

/// One entry's header fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header<'a> {
    /// Path in the archive (`/`-separated, relative).
    pub path: &'a [u8],
    pub kind: EntryKind,
    pub mode: u32,
    /// Content length (files only).
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: u32,
    /// Symlink target.
    pub link: &'a [u8],
}

/// The header blocks of an entry: a pax extended header when needed, then the ustar
/// header. The content (for a file) follows, then [`padding`].
pub(super) fn header(h: &Header) -> Vec<u8> {
    let mut name = h.path.to_vec();
    if h.kind == EntryKind::Dir {
        name.push(b'/');
    }
    let mut records = Vec::new();
    if name.len() > 100 {
        pax_record(&mut records, "path", &name);
    }
    if h.link.len() > 100 {
        pax_record(&mut records, "linkpath", h.link);
    }
    if h.size > MAX_OCTAL_11 {
        pax_record(&mut records, "size", h.size.to_string().as_bytes());
    }
    if h.mtime_ns != 0 || h.mtime < 0 || h.mtime as u64 > MAX_OCTAL_11 {
        pax_record(
            &mut records,
            "mtime",
            pax_time(h.mtime, h.mtime_ns).as_bytes(),
        );
    }
    if !records.is_empty()
        && (std::str::from_utf8(&name).is_err() || std::str::from_utf8(h.link).is_err())
    {
        // pax strings are UTF-8 unless the archive says otherwise; names here are bytes.
        let mut first = Vec::new();
        pax_record(&mut first, "hdrcharset", b"BINARY");
        records.splice(0..0, first);
    }
    let mut out = Vec::with_capacity(3 * BLOCK);
    if !records.is_empty() {
        let mut pax_name = b"PaxHeaders/".to_vec();
        let base = name
            .rsplit(|&b| b == b'/')
            .find(|s| !s.is_empty())
            .unwrap_or(b"entry");
        pax_name.extend_from_slice(&base[..base.len().min(80)]);
        let pax = Header {
            path: &pax_name,
            kind: EntryKind::File,
            mode: 0o644,
            size: records.len() as u64,
            mtime: 0,
            mtime_ns: 0,
            link: b"",
        };
        out.extend_from_slice(&ustar(&pax, &pax_name, b'x'));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    let flag = match h.kind {
        EntryKind::File => b'0',
        EntryKind::Dir => b'5',
        EntryKind::Symlink => b'2',
    };
    out.extend_from_slice(&ustar(h, &name, flag));
    out
}

/// Zero bytes that complete a file's content of `size` bytes to whole blocks.
pub(super) fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The end of an archive: two zero blocks.
pub(super) fn end() -> [u8; 2 * BLOCK] {
    [0; 2 * BLOCK]
}

/// One ustar header block; fields that do not fit are cut (a pax record says them).
fn ustar(h: &Header, name: &[u8], flag: u8) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put(&mut b[0..100], name);
    put(
        &mut b[100..108],
        octal(u64::from(h.mode & MODE_MASK), 7).as_bytes(),
    );
    put(&mut b[108..116], octal(0, 7).as_bytes());
    put(&mut b[116..124], octal(0, 7).as_bytes());
    let size = if h.kind == EntryKind::File { h.size } else { 0 };
    put(
        &mut b[124..136],
        octal(size.min(MAX_OCTAL_11), 11).as_bytes(),
    );
    let mtime = h.mtime.clamp(0, MAX_OCTAL_11 as i64) as u64;
    put(&mut b[136..148], octal(mtime, 11).as_bytes());
    b[156] = flag;
    put(&mut b[157..257], h.link);
    put(&mut b[257..263], b"ustar\0");
    put(&mut b[263..265], b"00");
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    put(&mut b[148..156], format!("{sum:06o}\0 ").as_bytes());
    b
}

/// Copy as much of `value` as fits into `field`.
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// `value` as `digits` octal digits (zero-padded; the field's last byte stays NUL).
fn octal(value: u64, digits: usize) -> String {
    format!("{value:0digits$o}")
}

/// One pax record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A time as pax writes it: seconds, and a fraction when there are nanoseconds
/// (`-1.5` is half a second before `-1`).
fn pax_time(secs: i64, nanos: u32) -> String {
    let mut s = String::new();
    if nanos == 0 {
        let _ = write!(s, "{secs}");
    } else if secs >= 0 {
        let _ = write!(s, "{secs}.{nanos:09}");
    } else {
        // secs + nanos/1e9 is negative: -(|secs| - 1) - (1e9 - nanos)/1e9.
        let _ = write!(s, "-{}.{:09}", -(secs + 1), 1_000_000_000 - nanos);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &[u8], size: u64, mtime: i64, mtime_ns: u32) -> Vec<u8> {
        header(&Header {
            path,
            kind: EntryKind::File,
            mode: 0o644,
            size,
            mtime,
            mtime_ns,
            link: b"",
        })
    }

    fn checksum_ok(b: &[u8]) -> bool {
        let mut copy = b[..BLOCK].to_vec();
        copy[148..156].fill(b' ');
        let sum: u32 = copy.iter().map(|&x| u32::from(x)).sum();
        let field = std::str::from_utf8(&b[148..154]).unwrap();
        u32::from_str_radix(field, 8).unwrap() == sum
    }

    #[test]
    fn a_short_file_is_one_ustar_block() {
        let h = file(b"exports/a.csv", 1234, 1_764_300_000, 0);
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[0..13], b"exports/a.csv");
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[257..263], b"ustar\0");
        assert_eq!(h[156], b'0');
        assert!(checksum_ok(&h));
        assert_eq!(padding(1234), 1536 - 1234);
        assert_eq!(padding(1024), 0);
    }

    #[test]
    fn long_paths_nanoseconds_and_huge_sizes_go_in_a_pax_header() {
        let long = vec![b'a'; 150];
        let h = file(&long, 9 << 30, 1_764_300_000, 5);
        assert_eq!(h.len() % BLOCK, 0);
        assert_eq!(h[156], b'x');
        assert!(checksum_ok(&h));
        let text = String::from_utf8_lossy(&h[BLOCK..h.len() - BLOCK]);
        assert!(
            text.contains(&format!("path={}\n", "a".repeat(150))),
            "{text}"
        );
        assert!(text.contains("size=9663676416\n"), "{text}");
        assert!(text.contains("mtime=1764300000.000000005\n"), "{text}");
        assert!(checksum_ok(&h[h.len() - BLOCK..]));
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [0, 1, 80, 89, 90, 91, 985, 995, 996, 9990] {
            let mut r = Vec::new();
            pax_record(&mut r, "path", &vec![b'x'; n]);
            let len: usize = String::from_utf8_lossy(&r)
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, r.len(), "value of {n} bytes");
        }
    }

    #[test]
    fn negative_times_with_nanoseconds() {
        assert_eq!(pax_time(-2, 500_000_000), "-1.500000000");
        assert_eq!(pax_time(-1, 1), "-0.999999999");
        assert_eq!(pax_time(7, 0), "7");
    }

    #[test]
    fn directories_end_in_a_slash_and_setuid_is_dropped() {
        let h = header(&Header {
            path: b"exports/db",
            kind: EntryKind::Dir,
            mode: 0o4755,
            size: 99,
            mtime: 0,
            mtime_ns: 0,
            link: b"",
        });
        assert_eq!(&h[0..11], b"exports/db/");
        assert_eq!(&h[100..108], b"0000755\0");
        assert_eq!(&h[124..136], b"00000000000\0", "a directory has no content");
        assert_eq!(h[156], b'5');
    }
}
