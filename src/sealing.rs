//! Sealing: `age(zstd(plaintext))` and back, with the checks the commit order requires.
//!
//! Sealing decompresses its own output and compares it with the input before encrypting
//! (restic #4523: a compression bug silently corrupted data), and always finishes the age
//! stream. Opening bounds every decompression by the size the signed manifest promises.

use std::io::Read;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why an object could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// None of the identities is a recipient of the object.
    #[error("none of the identities can decrypt it (it was encrypted to other recipients)")]
    NoMatchingKey,
    /// The object is not a valid age file, or its authentication failed.
    #[error("decryption failed: {0}")]
    Decrypt(String),
    /// The decrypted content is not a valid zstd frame, or is larger than allowed.
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// The plaintext was read, and refused by the reader it was given to.
    #[error("{0}")]
    Refused(String),
    /// Sealing failed (a bug or a failing library): the output did not round-trip.
    #[error("sealing failed: {0}")]
    Seal(String),
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of `data`, lowercase hex (as objects are recorded in commits).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// The keyed chunk id: HMAC-SHA-256 of the plaintext under the dedup key.
pub fn chunk_id(dedup_key: &[u8; 32], plaintext: &[u8]) -> [u8; 32] {
    Keyed::new(dedup_key).id(plaintext)
}

/// HMAC-SHA-256 under one key, the key's pads computed once: [`chunk_id`] for many short
/// messages (a backup hashes every small file's path to place its runs' ends).
#[derive(Clone)]
pub struct Keyed(Hmac<Sha256>);

impl Keyed {
    /// The HMAC under `key`.
    pub fn new(key: &[u8; 32]) -> Keyed {
        Keyed(<Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length"))
    }

    /// The HMAC of `data` (as [`chunk_id`] gives it).
    pub fn id(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// A data set's source identity (docs/format.md section 7): what a job saves — its paths
/// made absolute and sorted, its stream's file name — as HMAC-SHA-256 under the dedup key,
/// the first 16 bytes in hex. Equal sources give equal identities on every host holding the
/// key; a store reader, without the key, learns nothing of the paths.
pub fn source_id(
    dedup_key: &[u8; 32],
    paths: &[std::path::PathBuf],
    stream: Option<&str>,
) -> String {
    let mut paths: Vec<&[u8]> = paths
        .iter()
        .map(|p| p.as_os_str().as_encoded_bytes())
        .collect();
    paths.sort();
    paths.dedup();
    let mut message = b"snapdrill source v2\0".to_vec();
    for p in paths {
        message.extend_from_slice(b"path\0");
        message.extend_from_slice(p);
        message.push(0);
    }
    if let Some(name) = stream {
        message.extend_from_slice(b"stream\0");
        message.extend_from_slice(name.as_bytes());
        message.push(0);
    }
    hex::encode(&chunk_id(dedup_key, &message)[..16])
}

/// The FastCDC gear seed derived from the dedup key (docs/format.md section 4).
pub fn chunker_seed(dedup_key: &[u8; 32]) -> u64 {
    let tag = chunk_id(dedup_key, b"snapdrill fastcdc seed v1");
    u64::from_le_bytes(tag[..8].try_into().expect("8 bytes"))
}

/// Reused zstd contexts and the buffer of the round-trip check: allocating them for every
/// chunk cost more page faults than compression itself (`perf`, `make bench`). A small
/// shared pool rather than thread-locals, because the blocking pool that runs sealing has
/// many threads; at most one codec per concurrent sealer is ever created.
struct Codec {
    level: i32,
    compressor: zstd::bulk::Compressor<'static>,
    /// The compressed chunk, before it is encrypted: reused, so a chunk costs no fresh
    /// buffer of its bound here.
    out: Vec<u8>,
    check: RoundTrip,
}

/// The round-trip check decompresses as a stream, in pieces of `piece`: it holds the
/// frame's window (2 MiB at level 3), not a copy of the chunk (up to 8 MiB), so what a
/// sealer keeps does not grow with the largest chunk it has met.
struct RoundTrip {
    decoder: zstd::stream::raw::Decoder<'static>,
    piece: Vec<u8>,
}

/// The round-trip check's piece.
const CHECK_PIECE: usize = 128 << 10;

static CODECS: std::sync::Mutex<Vec<Codec>> = std::sync::Mutex::new(Vec::new());
fn with_codec<T>(
    level: i32,
    f: impl FnOnce(&mut Codec) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let pooled = {
        let mut pool = CODECS.lock().unwrap_or_else(|p| p.into_inner());
        pool.iter()
            .position(|c| c.level == level)
            .map(|i| pool.swap_remove(i))
    };
    let mut codec = match pooled {
        Some(c) => c,
        None => Codec {
            level,
            compressor: zstd::bulk::Compressor::new(level)?,
            out: Vec::new(),
            check: RoundTrip {
                decoder: zstd::stream::raw::Decoder::new()?,
                piece: vec![0; CHECK_PIECE],
            },
        },
    };
    let result = f(&mut codec);
    CODECS.lock().unwrap_or_else(|p| p.into_inner()).push(codec);
    result
}

static OPENERS: std::sync::Mutex<Vec<Opener>> = std::sync::Mutex::new(Vec::new());

/// What opens a chunk: a zstd context that decompresses straight into the chunk's buffer
/// (stable output: no window buffer, no copy out of one) and the piece that age decrypts
/// into. Pooled like [`Codec`], so an opener's memory is the same for every chunk.
struct Opener {
    dctx: zstd::zstd_safe::DCtx<'static>,
    piece: Vec<u8>,
}

/// The decrypted piece a chunk is decompressed from: age's own chunk size.
const OPEN_PIECE: usize = 64 << 10;

fn with_opener<T>(f: impl FnOnce(&mut Opener) -> Result<T, SealError>) -> Result<T, SealError> {
    let pooled = OPENERS.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut opener = match pooled {
        Some(o) => o,
        None => {
            let mut dctx = zstd::zstd_safe::DCtx::try_create()
                .ok_or_else(|| SealError::Decompress("cannot create a zstd context".into()))?;
            dctx.set_parameter(zstd::zstd_safe::DParameter::StableOutBuffer(true))
                .map_err(|c| SealError::Decompress(zstd_error(c)))?;
            Opener {
                dctx,
                piece: vec![0; OPEN_PIECE],
            }
        }
    };
    let result = f(&mut opener);
    OPENERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(opener);
    result
}

fn zstd_error(code: usize) -> String {
    zstd::zstd_safe::get_error_name(code).to_string()
}

/// Compress with zstd, check the round trip, then encrypt to every recipient.
pub fn seal(
    plaintext: &[u8],
    level: i32,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, SealError> {
    with_codec(level, |c| {
        let bound = zstd::zstd_safe::compress_bound(plaintext.len());
        if c.out.capacity() < bound {
            // A new buffer, never a grown one: growing copies the old buffer's whole
            // capacity, so every page of it would stay resident however little zstd
            // writes. A new one is touched only where the compressed bytes go.
            c.out = Vec::with_capacity(bound);
        }
        c.out.clear();
        c.compressor.compress_to_buffer(plaintext, &mut c.out)?;
        if !c.check.matches(&c.out, plaintext)? {
            return Err(std::io::Error::other(
                "zstd output does not decompress to the input",
            ));
        }
        // The sealed chunk is mapped on its own (crate::memory), as the plaintext was.
        let out = crate::memory::chunk_buffer(sealed_len(c.out.len(), recipients.len()));
        Ok(encrypt_dyn(
            &mut &c.out[..],
            out,
            recipients.iter().map(|r| r as &dyn age::Recipient),
        ))
    })
    .map_err(|e| SealError::Seal(format!("zstd: {e}")))?
}

impl RoundTrip {
    /// Does `compressed` hold exactly one frame whose content is `plaintext`? Compared
    /// piece by piece as it decompresses.
    fn matches(&mut self, compressed: &[u8], plaintext: &[u8]) -> std::io::Result<bool> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        self.decoder.reinit()?;
        let mut input = InBuffer::around(compressed);
        let mut done = 0;
        loop {
            let (hint, n) = {
                let mut output = OutBuffer::around(&mut self.piece[..]);
                let hint = self.decoder.run(&mut input, &mut output)?;
                (hint, output.pos())
            };
            let Some(expected) = plaintext.get(done..done + n) else {
                return Ok(false); // longer than the input
            };
            if self.piece[..n] != *expected {
                return Ok(false);
            }
            done += n;
            if hint == 0 {
                // The frame is complete: it must be all of the output and all of the input.
                return Ok(done == plaintext.len() && input.pos() == compressed.len());
            }
            if n == 0 && input.pos() == compressed.len() {
                return Ok(false); // a frame cut short
            }
        }
    }
}

/// Encrypt to every recipient (age v1 binary format).
pub fn encrypt(data: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, SealError> {
    encrypt_from(&mut &data[..], data.len(), recipients)
}

/// [`encrypt`] of `len` bytes read from `source` (a spooled manifest is never held in
/// plaintext).
pub fn encrypt_from(
    source: &mut dyn Read,
    len: usize,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, SealError> {
    encrypt_dyn(
        source,
        Vec::with_capacity(sealed_len(len, recipients.len())),
        recipients.iter().map(|r| r as &dyn age::Recipient),
    )
}

/// Encrypt a repository secret (a read key, the dedup key) to the people and escrow keys
/// of the repository: X25519, SSH or plugin recipients.
pub fn encrypt_to_keys(
    data: &[u8],
    recipients: &[crate::keys::RecipientKey],
) -> Result<Vec<u8>, crate::error::Error> {
    let boxed = recipients
        .iter()
        .map(|r| r.to_age())
        .collect::<crate::error::Result<Vec<_>>>()?;
    encrypt_dyn(
        &mut &data[..],
        Vec::with_capacity(sealed_len(data.len(), boxed.len())),
        boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .map_err(|e| crate::error::Error::fatal(format!("cannot seal a repository key: {e}")))
}

/// The size of `len` bytes sealed for `count` recipients, at most: the header (~100 bytes
/// and ~200 per recipient) and a 16-byte tag per 64 KiB. Reserved up front, as growing
/// the buffer would copy the whole object.
fn sealed_len(len: usize, count: usize) -> usize {
    len + len / 4096 + 1024 + 256 * count
}

/// Encrypt what `source` yields into `out` (empty, its capacity from [`sealed_len`]).
fn encrypt_dyn<'a>(
    source: &mut dyn Read,
    mut out: Vec<u8>,
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
) -> Result<Vec<u8>, SealError> {
    let encryptor = age::Encryptor::with_recipients(recipients)
        .map_err(|e| SealError::Seal(format!("age: {e}")))?;
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| SealError::Seal(format!("age: {e}")))?;
    std::io::copy(source, &mut writer).map_err(|e| SealError::Seal(format!("age: {e}")))?;
    // finish() writes the last, tagged chunk: without it the object never decrypts.
    writer
        .finish()
        .map_err(|e| SealError::Seal(format!("age: {e}")))?;
    Ok(out)
}

/// Decrypt an age file, refusing more than `limit` bytes of output.
pub fn decrypt<'a>(
    sealed: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
) -> Result<Vec<u8>, SealError> {
    let mut reader = decrypting(sealed, identities)?;
    let mut out = Vec::with_capacity(sealed.len().min(limit as usize));
    (&mut reader)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SealError::Decrypt(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(SealError::Decrypt(format!(
            "more than {limit} bytes after decryption"
        )));
    }
    Ok(out)
}

/// An age file's plaintext as a stream, after the header checks and the key agreement.
fn decrypting<'s, 'a>(
    sealed: &'s [u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
) -> Result<age::stream::StreamReader<&'s [u8]>, SealError> {
    check_header(sealed)?;
    let decryptor =
        age::Decryptor::new_buffered(sealed).map_err(|e| SealError::Decrypt(e.to_string()))?;
    decryptor.decrypt(identities).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => SealError::NoMatchingKey,
        other => SealError::Decrypt(other.to_string()),
    })
}

/// Most recipient stanzas an object's header may hold: snapdrill writes one per
/// recipient, and a repository has at most [`crate::keys::MAX_RECIPIENTS`]. Each stanza
/// costs a key agreement per identity, so an object stuffed with stanzas (anyone holding
/// the public recipient can make one) would cost a reader minutes.
pub const MAX_STANZAS: usize = crate::keys::MAX_RECIPIENTS + 8;
/// Largest age header accepted.
pub const MAX_HEADER: usize = 64 << 10;

/// Refuse, before any cryptography, an age header with more stanzas or bytes than
/// snapdrill ever writes.
fn check_header(sealed: &[u8]) -> Result<(), SealError> {
    let window = &sealed[..sealed.len().min(MAX_HEADER)];
    let mut stanzas = 0;
    for line in window.split(|&b| b == b'\n') {
        if line.starts_with(b"--- ") {
            return Ok(());
        }
        if line.starts_with(b"-> ") {
            stanzas += 1;
            if stanzas > MAX_STANZAS {
                return Err(SealError::Decrypt(format!(
                    "the header holds more than {MAX_STANZAS} recipient stanzas: not an object snapdrill wrote"
                )));
            }
        }
    }
    Err(SealError::Decrypt(format!(
        "no age header end within {MAX_HEADER} bytes: not an object snapdrill wrote"
    )))
}

/// Decrypt and decompress; the plaintext must be at most `limit` bytes.
pub fn open<'a>(
    sealed: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
) -> Result<Vec<u8>, SealError> {
    // zstd never expands incompressible data by more than a small margin, so the
    // compressed payload is bounded by the plaintext limit plus that margin.
    let compressed = decrypt(sealed, identities, limit + limit / 64 + 1024)?;
    decompress(&compressed, limit)
}

/// Decrypt, then hand the decompressed plaintext to `read` as a stream that fails once it
/// passes `limit` bytes: a parser reads it without the whole plaintext ever being held.
pub fn open_with<'a, T>(
    sealed: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
    read: impl FnOnce(&mut dyn Read) -> Result<T, String>,
) -> Result<T, SealError> {
    let compressed = decrypt_bounded(sealed, identities, limit)?;
    read(&mut decompressing(&compressed, limit)?).map_err(SealError::Refused)
}

/// Decrypt an object whose plaintext, decompressed, must be at most `limit` bytes: its
/// compressed payload.
fn decrypt_bounded<'a>(
    sealed: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
) -> Result<Vec<u8>, SealError> {
    // zstd never expands incompressible data by more than a small margin.
    decrypt(sealed, identities, limit + limit / 64 + 1024)
}

/// An object's plaintext as a stream, decrypted and decompressed as it is read, that fails
/// once it passes `limit` bytes: a parser reads it, as often as it needs, without the
/// plaintext or the compressed text ever being held.
pub fn opening<'s, 'a>(
    sealed: &'s [u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    limit: u64,
) -> Result<Box<dyn Read + 's>, SealError> {
    let decoder = zstd::stream::read::Decoder::new(decrypting(sealed, identities)?)
        .map_err(|e| SealError::Decompress(e.to_string()))?;
    Ok(Box::new(Limited {
        inner: decoder,
        left: limit,
    }))
}

/// The plaintext of a compressed payload as a stream that fails once it passes `limit`
/// bytes: a parser reads it without the whole plaintext ever being held.
fn decompressing(compressed: &[u8], limit: u64) -> Result<impl Read + '_, SealError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .map_err(|e| SealError::Decompress(e.to_string()))?;
    Ok(Limited {
        inner: decoder,
        left: limit,
    })
}

/// A reader that fails (rather than ends) past its limit: a bomb is an error, not a
/// truncated document.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(
                "more bytes than the limit after decompression",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Decrypt and decompress an object whose plaintext size is known exactly (a chunk): one
/// allocation of that size, and any other size is an error. Decrypted a piece at a time
/// and decompressed straight into that allocation: neither the compressed payload nor a
/// decompression window is ever held, so opening a chunk allocates nothing else — a long
/// restore frees and maps one buffer per chunk and leaves the heap as it found it.
pub fn open_exact<'a>(
    sealed: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    size: u64,
) -> Result<Vec<u8>, SealError> {
    let mut reader = decrypting(sealed, identities)?;
    let mut plain = crate::memory::chunk_buffer(size as usize);
    with_opener(|o| o.decompress(&mut reader, &mut plain)).map_err(|e| match e {
        SealError::Decompress(e) => {
            SealError::Decompress(format!("{e} (the manifest says {size} bytes)"))
        }
        other => other,
    })?;
    if plain.len() as u64 != size {
        return Err(SealError::Decompress(format!(
            "{} bytes, the manifest says {size}",
            plain.len()
        )));
    }
    Ok(plain)
}

impl Opener {
    /// Decompress the one frame `reader` yields into `plain`'s spare capacity, refusing a
    /// frame that does not fit, is cut short or is followed by more bytes.
    fn decompress(&mut self, reader: &mut dyn Read, plain: &mut Vec<u8>) -> Result<(), SealError> {
        use zstd::zstd_safe::{InBuffer, OutBuffer, ResetDirective};
        let refused = |what: &str| Err(SealError::Decompress(what.to_string()));
        self.dctx
            .reset(ResetDirective::SessionOnly)
            .map_err(|c| SealError::Decompress(zstd_error(c)))?;
        let mut finished = false;
        loop {
            // A read error is age's: a chunk of the object failed authentication.
            let n = read_some(reader, &mut self.piece)
                .map_err(|e| SealError::Decrypt(e.to_string()))?;
            match (n, finished) {
                (0, true) => return Ok(()),
                (0, false) => return refused("the zstd frame is cut short"),
                (_, true) => return refused("bytes after the zstd frame"),
                _ => {}
            }
            let mut input = InBuffer::around(&self.piece[..n]);
            while input.pos() < n && !finished {
                let at = plain.len();
                let mut output = OutBuffer::around_pos(plain, at);
                let hint = self
                    .dctx
                    .decompress_stream(&mut output, &mut input)
                    .map_err(|c| SealError::Decompress(zstd_error(c)))?;
                finished = hint == 0;
            }
            if input.pos() < n {
                return refused("bytes after the zstd frame");
            }
        }
    }
}

/// Read into `buf` until it is full or the stream ends: the bytes read.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decompress one zstd stream, refusing output larger than `limit` (bomb guard).
pub fn decompress(compressed: &[u8], limit: u64) -> Result<Vec<u8>, SealError> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .map_err(|e| SealError::Decompress(e.to_string()))?;
    let mut out = Vec::new();
    (&mut decoder)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| SealError::Decompress(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(SealError::Decompress(format!(
            "more than the {limit} bytes the manifest allows"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> (age::x25519::Identity, age::x25519::Recipient) {
        let id = age::x25519::Identity::generate();
        let r = id.to_public();
        (id, r)
    }

    /// Compressible bytes larger than the check's piece and the level-3 window.
    fn csv_like(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"0123456789,abcdef;\n"[(i * 7 + i / 1000) % 19])
            .collect()
    }

    #[test]
    fn the_round_trip_check_accepts_the_input_and_nothing_else() {
        let plain = csv_like(5 << 20);
        with_codec(3, |c| {
            let frame = c.compressor.compress(&plain)?;
            assert!(c.check.matches(&frame, &plain)?);
            let empty = c.compressor.compress(b"")?;
            assert!(c.check.matches(&empty, b"")?);
            // One byte of the input differs (in the last piece), or it is shorter or longer.
            let mut other = plain.clone();
            *other.last_mut().unwrap() ^= 1;
            assert!(!c.check.matches(&frame, &other)?);
            assert!(!c.check.matches(&frame, &plain[..plain.len() - 1])?);
            assert!(!c.check.matches(&frame, &[&plain[..], b"x"].concat())?);
            // The frame cut short, or followed by more bytes.
            let cut = &frame[..frame.len() - 1];
            assert!(!c.check.matches(cut, &plain).unwrap_or(false));
            let trailing = [&frame[..], &frame[..]].concat();
            assert!(!c.check.matches(&trailing, &plain)?);
            // And the codec is still good for the next chunk.
            assert!(c.check.matches(&frame, &plain)?);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn seal_open_round_trip() {
        let (id, r) = keypair();
        let data = b"customer_id,name\n1,\xe4\xbd\x90\xe8\x97\xa4\n".repeat(1000);
        let sealed = seal(&data, 3, &[r]).unwrap();
        let ids = [&id as &dyn age::Identity];
        let back = open(&sealed, ids.into_iter(), data.len() as u64).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn open_refuses_wrong_key_tampering_and_bombs() {
        let (_, r) = keypair();
        let (other, _) = keypair();
        let data = vec![0u8; 1 << 20];
        let sealed = seal(&data, 3, &[r]).unwrap();
        let ids = [&other as &dyn age::Identity];
        assert!(matches!(
            open(&sealed, ids.into_iter(), 1 << 20),
            Err(SealError::NoMatchingKey)
        ));

        let (id, r) = keypair();
        let ids = [&id as &dyn age::Identity];
        let sealed = seal(&data, 3, &[r]).unwrap();
        // A megabyte of zeros compresses to almost nothing: a limit below it is a bomb.
        assert!(matches!(
            open(&sealed, ids.into_iter(), 1000),
            Err(SealError::Decompress(_))
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let ids = [&id as &dyn age::Identity];
        assert!(matches!(
            open(&flipped, ids.into_iter(), 1 << 20),
            Err(SealError::Decrypt(_))
        ));
    }

    #[test]
    fn open_exact_takes_one_whole_frame_of_the_promised_size() {
        let (id, r) = keypair();
        let ids = || [&id as &dyn age::Identity].into_iter();
        for data in [csv_like(3 << 20), csv_like(100 << 10)] {
            let n = data.len() as u64;
            let sealed = seal(&data, 3, std::slice::from_ref(&r)).unwrap();
            assert_eq!(open_exact(&sealed, ids(), n).unwrap(), data);
            // Any other size than the manifest's is refused, larger or smaller, whether
            // or not the buffer had room (a 100 KB chunk's buffer is 1 MiB).
            for wrong in [n - 1, n + 1] {
                let e = open_exact(&sealed, ids(), wrong).unwrap_err();
                assert!(matches!(e, SealError::Decompress(_)), "{wrong}: {e}");
            }
            let mut flipped = sealed.clone();
            *flipped.last_mut().unwrap() ^= 1;
            let e = open_exact(&flipped, ids(), n).unwrap_err();
            assert!(matches!(e, SealError::Decrypt(_)), "{e}");
        }
        // Payloads that are not exactly one frame: cut short, followed by a byte, doubled.
        let data = csv_like(2 << 20);
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let n = data.len() as u64;
        let cases: [(&[u8], u64, &str); 3] = [
            (&frame[..frame.len() - 1], n, "cut short"),
            (&[&frame[..], b"x"].concat(), n, "after the zstd frame"),
            (
                &[&frame[..], &frame[..]].concat(),
                2 * n,
                "after the zstd frame",
            ),
        ];
        for (payload, size, why) in cases {
            let sealed = encrypt(payload, std::slice::from_ref(&r)).unwrap();
            let e = open_exact(&sealed, ids(), size).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn chunk_ids_are_keyed() {
        let a = chunk_id(&[1; 32], b"x");
        let b = chunk_id(&[2; 32], b"x");
        assert_ne!(a, b);
        assert_ne!(a, sha256(b"x"));
        assert_ne!(chunker_seed(&[1; 32]), chunker_seed(&[2; 32]));
    }
}
