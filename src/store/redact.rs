//! Keeping credentials out of every message: errors from the servers, locations, reports.

use std::collections::BTreeMap;

use super::location::Location;

/// Environment variables whose values are secrets (or identify an account) in the clouds
/// object_store reads from the environment.
const SECRET_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
];

/// Option keys that hold secrets contain one of these words.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "key",
    "token",
    "password",
    "sas",
    "credential",
    "signature",
];

/// Query parameters that carry signatures or tokens in presigned and SAS URLs.
const SECRET_PARAMS: &[&str] = &[
    "sig=",
    "signature=",
    "x-amz-signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
    "token=",
];

/// Replaces every known secret of a store with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// The secrets of one store: sensitive options, the URL's password, and the cloud's
    /// secret environment variables.
    pub fn for_store(location: &Location, options: &BTreeMap<String, String>) -> Self {
        let mut secrets: Vec<String> = options
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                SECRET_WORDS.iter().any(|w| k.contains(w))
                    || k.ends_with("_id") && k.contains("access")
            })
            .map(|(_, v)| v.clone())
            .collect();
        secrets.extend(SECRET_ENV.iter().filter_map(|v| std::env::var(v).ok()));
        if let Location::Remote { url, .. } = location
            && let Ok(u) = url::Url::parse(url)
        {
            secrets.extend(userinfo(&u));
            secrets.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
        }
        // An endpoint given with `user:password@` (as an option, or in the clouds'
        // environment: `AWS_ENDPOINT`, ...) ends up in every request URL the backends quote.
        let cloud_env = std::env::vars().filter(|(k, _)| {
            ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"]
                .iter()
                .any(|p| k.starts_with(p))
        });
        for value in options.values().cloned().chain(cloud_env.map(|(_, v)| v)) {
            if let Ok(u) = url::Url::parse(&value) {
                secrets.extend(userinfo(&u));
            }
        }
        // Short values would mangle ordinary words; no real credential is that short.
        secrets.retain(|s| s.len() >= 6);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced, and the user info of any URL in it.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        strip_secret_params(&strip_userinfo(&out))
    }
}

/// The user name and password of a URL (both can be credentials: an access key id is
/// often given as the user name).
fn userinfo(u: &url::Url) -> Vec<String> {
    let mut out = Vec::new();
    if !u.username().is_empty() {
        out.push(u.username().to_owned());
    }
    out.extend(u.password().map(str::to_owned));
    out
}

/// Every `scheme://user:password@host` in `text` as `scheme://***@host`, whatever the
/// secret list knew: a URL's user info is never worth printing.
fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn strip_secret_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = SECRET_PARAMS.iter().find(|p| {
            lower[i..].starts_with(*p)
                && (i == 0 || matches!(text.as_bytes()[i - 1], b'?' | b'&' | b' '))
        });
        match hit {
            Some(p) => {
                out.push_str(&text[i..i + p.len()]);
                out.push_str("***");
                i += p.len();
                while i < text.len()
                    && !matches!(
                        text.as_bytes()[i],
                        b'&' | b' ' | b'"' | b'\'' | b')' | b'\n'
                    )
                {
                    i += 1;
                }
            }
            None => {
                let c = text[i..].chars().next().expect("in bounds");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_signed_params_are_removed() {
        let mut opts = BTreeMap::new();
        opts.insert(
            "secret_access_key".to_owned(),
            "CANARY-SECRET-123".to_owned(),
        );
        opts.insert("access_key_id".to_owned(), "AKIACANARY".to_owned());
        opts.insert("region".to_owned(), "us-east-1".to_owned());
        let loc = Location::Remote {
            kind: super::super::location::RemoteKind::Http,
            url: "https://u:PASSWORD-CANARY@h/x".into(),
        };
        let r = Redactor::for_store(&loc, &opts);
        let msg = "error: key AKIACANARY secret CANARY-SECRET-123 pw PASSWORD-CANARY at \
                   https://h/x?se=2030&sig=ABCDEF%2B and ?X-Amz-Signature=deadbeef&y=1 in us-east-1";
        let clean = r.clean(msg);
        for canary in [
            "AKIACANARY",
            "CANARY-SECRET-123",
            "PASSWORD-CANARY",
            "ABCDEF",
            "deadbeef",
        ] {
            assert!(!clean.contains(canary), "{canary} leaked: {clean}");
        }
        assert!(clean.contains("us-east-1"), "{clean}");
        let url =
            r.clean("PUT http://ANYUSER:ANY-PASS@127.0.0.1:9000/b/k and s3://k@b/x and mailto:a@b");
        assert_eq!(
            url,
            "PUT http://***@127.0.0.1:9000/b/k and s3://***@b/x and mailto:a@b"
        );
        assert!(clean.contains("y=1"), "{clean}");
    }
}
