//! Where a store lives: its configured URL parsed into a [`Location`] (no I/O, no
//! `object_store`), what may be printed of it ([`redact_url`]), and which place it names
//! ([`Location::place`]), so that two entries for one replica are refused.

use std::path::{Component, Path, PathBuf};

/// Where a store lives, parsed from its configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An in-process memory store with this name.
    Memory(String),
    /// A cloud or HTTP store: its scheme and the full URL.
    Remote {
        /// `s3`, `az`, `gs` or `http`.
        kind: RemoteKind,
        /// The URL as configured.
        url: String,
    },
}

/// The remote store families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// S3 and S3-compatible.
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage.
    Gcs,
    /// HTTP/WebDAV.
    Http,
}

/// Parse a store URL. Relative paths are resolved against `base_dir` (the config's folder).
pub fn parse_location(url: &str, base_dir: &Path) -> Result<Location, String> {
    if let Some(rest) = url.strip_prefix("memory://") {
        if rest.is_empty() {
            return Err("memory:// needs a name, e.g. memory://test".into());
        }
        return Ok(Location::Memory(rest.to_owned()));
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!(
                "'{url}' is not an absolute file URL; write file:///absolute/path or a plain path"
            ));
        }
        return Ok(Location::Local(PathBuf::from(percent_decode(rest)?)));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        let kind = match scheme {
            "s3" | "s3a" => RemoteKind::S3,
            "az" | "azure" | "abfs" | "abfss" => RemoteKind::Azure,
            "gs" => RemoteKind::Gcs,
            "http" | "https" => RemoteKind::Http,
            _ => return Err(format!("unknown store scheme '{scheme}://'")),
        };
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("'{}' is not a valid URL: {e}", redact_url(url)))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "'{}' names no bucket, container or host",
                redact_url(url)
            ));
        }
        return Ok(Location::Remote {
            kind,
            url: url.to_owned(),
        });
    }
    if url.is_empty() {
        return Err("the store url is empty".into());
    }
    Ok(Location::Local(base_dir.join(url)))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad %-escape in file URL")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in file URL")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "file URL is not UTF-8 after decoding".into())
}

/// A URL without user info or query string, safe to print.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// The place a store names: two stores whose places are equal or nested are one replica
/// counted twice (or one store's objects listed as another's debris).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// What kind of place, and which account, endpoint, bucket or host.
    pub scope: String,
    /// Path components inside it.
    pub path: Vec<String>,
}

impl Place {
    /// Is `self` the same place as `other`, or inside it, or around it?
    pub fn overlaps(&self, other: &Place) -> bool {
        self.scope == other.scope && {
            let n = self.path.len().min(other.path.len());
            self.path[..n] == other.path[..n]
        }
    }

    /// For messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.scope, self.path.join("/"))
    }
}

impl Location {
    /// This location fit to print: never credentials.
    pub fn describe(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Memory(n) => format!("memory://{n}"),
            Location::Remote { url, .. } => redact_url(url),
        }
    }

    /// The place this location names. `options` are the store's backend options (an S3
    /// endpoint or an Azure account changes the place). Local paths are resolved through
    /// the symlinks that exist (`store1`, `./store1/` and a link to it are one place).
    pub fn place(&self, options: &std::collections::BTreeMap<String, String>) -> Place {
        match self {
            Location::Local(p) => Place {
                scope: "file".into(),
                path: components(&resolve_existing(p)),
            },
            Location::Memory(id) => Place {
                scope: format!("memory:{id}"),
                path: Vec::new(),
            },
            Location::Remote { kind, url } => remote_place(*kind, url, options),
        }
    }
}

fn remote_place(
    kind: RemoteKind,
    url: &str,
    options: &std::collections::BTreeMap<String, String>,
) -> Place {
    let parsed = url::Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let path: Vec<String> = parsed
        .as_ref()
        .map(|u| {
            u.path()
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let opt = |k: &str| {
        options
            .iter()
            .find(|(key, _)| {
                key.eq_ignore_ascii_case(k) || key.eq_ignore_ascii_case(&format!("aws_{k}"))
            })
            .map(|(_, v)| v.trim_end_matches('/').to_ascii_lowercase())
            .unwrap_or_default()
    };
    let scope = match kind {
        RemoteKind::S3 => format!("s3 endpoint={} bucket={host}", opt("endpoint")),
        RemoteKind::Azure => format!(
            "az account={} endpoint={} container={host}",
            opt("account_name"),
            opt("endpoint")
        ),
        RemoteKind::Gcs => format!("gs bucket={host}"),
        RemoteKind::Http => {
            let port = parsed
                .as_ref()
                .and_then(|u| u.port_or_known_default())
                .unwrap_or(0);
            format!("http host={host}:{port}")
        }
    };
    Place { scope, path }
}

/// `p` with the longest existing prefix resolved (symlinks, `..`) and the rest normalised.
fn resolve_existing(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut head = p.to_path_buf();
    loop {
        if let Ok(real) = std::fs::canonicalize(&head) {
            let mut out = real;
            for c in rest.iter().rev() {
                out.push(c);
            }
            return out;
        }
        match (head.file_name().map(|n| n.to_owned()), head.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

fn components(p: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn place(url: &str, base: &Path, opts: &[(&str, &str)]) -> Place {
        let o: BTreeMap<String, String> = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_location(url, base).unwrap().place(&o)
    }

    #[test]
    fn one_place_written_two_ways_is_one_place() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir(base.join("store1")).unwrap();
        std::os::unix::fs::symlink(base.join("store1"), base.join("alias")).unwrap();
        let a = place("store1", base, &[]);
        for same in [
            "./store1/",
            "alias",
            &format!("file://{}/store1", base.display()),
        ] {
            assert!(a.overlaps(&place(same, base, &[])), "{same}");
        }
        assert!(a.overlaps(&place("store1/inside", base, &[])), "nested");
        assert!(!a.overlaps(&place("store2", base, &[])));
        assert!(
            !a.overlaps(&place("store10", base, &[])),
            "a name prefix is not a path prefix"
        );

        let s3 = place(
            "s3://bcp/snapdrill",
            base,
            &[("endpoint", "http://127.0.0.1:9000")],
        );
        assert!(s3.overlaps(&place(
            "s3://BCP/snapdrill/",
            base,
            &[("endpoint", "http://127.0.0.1:9000/")]
        )));
        assert!(s3.overlaps(&place(
            "s3://bcp",
            base,
            &[("endpoint", "http://127.0.0.1:9000")]
        )));
        assert!(!s3.overlaps(&place(
            "s3://bcp/other",
            base,
            &[("endpoint", "http://127.0.0.1:9000")]
        )));
        assert!(!s3.overlaps(&place(
            "s3://bcp/snapdrill",
            base,
            &[("endpoint", "http://127.0.0.1:9001")]
        )));
        assert!(!s3.overlaps(&place("az://bcp/snapdrill", base, &[])));
    }
}
