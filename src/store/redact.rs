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
            secrets.extend(u.password().map(str::to_owned));
            secrets.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
        }
        // Short values would mangle ordinary words; no real credential is that short.
        secrets.retain(|s| s.len() >= 6);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        strip_secret_params(&out)
    }
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
        assert!(clean.contains("y=1"), "{clean}");
    }
}
