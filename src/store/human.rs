//! Store errors in a responder's words. `object_store` reports a refused connection as
//! `Generic S3 error: Error performing GET … after 3 retries …`, and missing AWS
//! credentials as a failure to reach the instance-metadata address: true, and useless at
//! 3 a.m. This module reads the whole error chain and names the cause a person can act on,
//! with what to do next. The raw text is kept (redacted) for `--verbose`.

use super::StoreErrorKind;

/// A cause found in an error chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The kind of failure it is.
    pub kind: StoreErrorKind,
    /// One sentence: what happened.
    pub what: String,
    /// What to do next.
    pub hint: String,
}

/// The cause of `e` (a chain of errors) from a store of `scheme` (`s3`, `az`, `gs`, `http`,
/// `file`), if the chain says one plainly.
pub fn cause(e: &(dyn std::error::Error + 'static), scheme: &str) -> Option<Cause> {
    let mut text = String::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        text.push_str(&err.to_string().to_ascii_lowercase());
        text.push('\n');
        cur = err.source();
    }
    classify(&text, scheme)
}

/// The environment variables each backend reads its credentials from.
fn credential_variables(scheme: &str) -> &'static str {
    match scheme {
        "s3" => {
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / AWS_WEB_IDENTITY_TOKEN_FILE)"
        }
        "az" => {
            "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY)"
        }
        "gs" => "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT_KEY)",
        _ => "the store's credential variables",
    }
}

/// What a hint needs filled in.
#[derive(Clone, Copy)]
enum Hint {
    /// Fixed text.
    Text(&'static str),
    /// Text followed by the backend's credential variables, then more text.
    Credentials(&'static str, &'static str),
}

/// (any of these in the chain, the kind, what happened, what to do), in order: the first
/// match wins — a refused connection to the metadata address is missing credentials, not
/// a network problem. Status codes appear only as statuses: a bare "403" also occurs in
/// hex object names.
const RULES: &[(&[&str], StoreErrorKind, &str, Hint)] = &[
    (
        &[
            "169.254.169.254",
            "no credentials",
            "credentials not found",
            "missing credentials",
        ],
        StoreErrorKind::Denied,
        "no credentials found in the environment",
        Hint::Credentials(
            "set ",
            " for the command (cron runs with an empty environment)",
        ),
    ),
    (
        &[
            "nosuchbucket",
            "bucket does not exist",
            "containernotfound",
            "container does not exist",
        ],
        StoreErrorKind::NotFound,
        "the bucket (or container) does not exist",
        Hint::Text(
            "check the bucket name in the store's url; if the bucket was deleted, create it, then run `snapdrill init --store NAME` and `snapdrill sync`",
        ),
    ),
    (
        &[
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "accessdenied",
            "access denied",
            "authenticationfailed",
            "authorizationfailure",
            "403 forbidden",
            "(403)",
            "status: 403",
            "401 unauthorized",
            "(401)",
            "status: 401",
            "permission denied",
        ],
        StoreErrorKind::Denied,
        "access denied: the store refused these credentials",
        Hint::Credentials("check ", " and the permissions they grant on this bucket"),
    ),
    (
        &["connection refused"],
        StoreErrorKind::Unavailable,
        "connection refused: nothing listens at the store's address",
        Hint::Text("check the endpoint in the store's options and that the server runs"),
    ),
    (
        &[
            "dns error",
            "failed to lookup address",
            "name or service not known",
            "no address associated",
            "nodename nor servname",
        ],
        StoreErrorKind::Unavailable,
        "the store's host name could not be resolved",
        Hint::Text("check the host name in the store's url or endpoint, and this host's DNS"),
    ),
    (
        &["certificate", "tls handshake", "invalid peer", "ssl"],
        StoreErrorKind::Unavailable,
        "the TLS connection to the store failed (certificate or protocol)",
        Hint::Text(
            "check the endpoint's certificate (or the CA bundle in AWS_CA_BUNDLE / SSL_CERT_FILE)",
        ),
    ),
    (
        &["timed out", "timeout", "deadline has elapsed"],
        StoreErrorKind::Unavailable,
        "the store did not answer in time",
        Hint::Text("check the network to the store, or raise the store's `timeout` in the config"),
    ),
];

/// `text`: the lowercase error chain, one error a line.
fn classify(text: &str, scheme: &str) -> Option<Cause> {
    if scheme == "file" && text.contains("permission denied") {
        return Some(Cause {
            kind: StoreErrorKind::Denied,
            what: "permission denied on the store's folder".into(),
            hint: "check the owner and mode of the store's folder and of what is in it".into(),
        });
    }
    let (_, kind, what, hint) = RULES
        .iter()
        .find(|(needles, ..)| needles.iter().any(|n| text.contains(n)))?;
    Some(Cause {
        kind: *kind,
        what: (*what).to_owned(),
        hint: match hint {
            Hint::Text(t) => (*t).to_owned(),
            Hint::Credentials(before, after) => {
                format!("{before}{}{after}", credential_variables(scheme))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_named_from_what_libraries_say() {
        let cases = [
            (
                "generic s3 error: error performing get http://127.0.0.1:9/b/config in 3ms after 3 retries - hyper error: client error (connect): tcp connect error: connection refused (os error 111)",
                "connection refused",
            ),
            (
                "error performing get: dns error: failed to lookup address information: name or service not known",
                "could not be resolved",
            ),
            (
                "error performing token request: error sending request for url (http://169.254.169.254/latest/api/token)",
                "no credentials",
            ),
            (
                "client error (403): <code>InvalidAccessKeyId</code>",
                "access denied",
            ),
            ("<Code>NoSuchBucket</Code>", "does not exist"),
            ("operation timed out", "in time"),
        ];
        for (raw, want) in cases {
            let got = classify(&raw.to_ascii_lowercase(), "s3").unwrap_or_else(|| panic!("{raw}"));
            assert!(got.what.contains(want), "{raw}: {got:?}");
        }
        let creds = classify("169.254.169.254", "s3").unwrap();
        assert!(creds.hint.contains("AWS_ACCESS_KEY_ID"), "{creds:?}");
        assert_eq!(classify("something else entirely", "s3"), None);
    }
}
