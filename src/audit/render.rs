//! The audit report as text (terminal, cron mail), Markdown and a Prometheus textfile; JSON
//! is its serde form. All four come from the same [`AuditReport`].

use std::fmt::Write as _;
use std::path::Path;

use super::{AuditReport, Finding, Immutability, StoreAudit, StoreStatus};
use crate::format;
use crate::metrics::{Sample, Textfile};
use crate::text::{escape, md_cell};
use crate::units::{binary_size as size, count};

/// Render by the file's extension: `.json` or `.md`/`.markdown`.
pub fn render_for(path: &Path, report: &AuditReport) -> Result<String, String> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => serde_json::to_string_pretty(report).map_err(|e| e.to_string()),
        Some("md" | "markdown") => Ok(markdown(report)),
        _ => Err(format!(
            "{}: the report format comes from the extension: .json or .md",
            path.display()
        )),
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

/// The verdict line.
pub fn verdict(r: &AuditReport) -> String {
    let unreachable: Vec<&str> = r.unreachable().map(|s| s.store.as_str()).collect();
    let stores = r.stores.len();
    if !r.problems.is_empty() {
        let mut per: Vec<String> = r
            .stores
            .iter()
            .filter(|s| s.problems > 0)
            .map(|s| format!("store {}: {}", s.store, s.problems))
            .collect();
        if !unreachable.is_empty() {
            per.push(format!("not reached: {}", unreachable.join(", ")));
        }
        format!(
            "audit FAILED: {} ({})",
            count(r.problems.len(), "problem"),
            per.join("; ")
        )
    } else if !unreachable.is_empty() {
        format!(
            "audit INCOMPLETE: store(s) {} could not be reached; no problem in the other {}",
            unreachable.join(", "),
            count(stores - unreachable.len(), "store")
        )
    } else {
        format!(
            "audit clean: {}, {}, no problem",
            count(stores, "store"),
            count(r.snapshots.len(), "snapshot")
        )
    }
}

fn store_line(s: &StoreAudit) -> String {
    match s.status {
        StoreStatus::Unreachable | StoreStatus::Excluded => format!(
            "{}: {}",
            if s.status == StoreStatus::Unreachable {
                "NOT REACHED"
            } else {
                "EXCLUDED"
            },
            s.reason.as_deref().unwrap_or("")
        ),
        _ => format!(
            "{}{}, {} ({}) listed, {} checked, {} verified, {} read ({}); {}",
            if s.status == StoreStatus::NoRepository {
                "NO REPOSITORY: "
            } else {
                ""
            },
            count(s.snapshots.len(), "snapshot"),
            count(s.objects_listed as usize, "object"),
            size(s.bytes_listed),
            s.objects_checked,
            count(s.manifests_verified as usize, "manifest"),
            s.read.objects,
            size(s.read.bytes),
            count(s.problems as usize, "problem")
        ),
    }
}

fn immutability_line(i: &Immutability) -> String {
    format!(
        "refuses overwrites: {}, refuses deletes: {} ({})",
        Immutability::word(i.refuses_overwrites),
        Immutability::word(i.refuses_deletes),
        i.detail
    )
}

fn finding_text(out: &mut String, label: &str, f: &Finding) {
    // Object names come from store listings, details from what a store served: escaped.
    let _ = writeln!(
        out,
        "{label}: store '{}', object '{}': {}",
        escape(&f.store),
        escape(&f.object),
        escape(&f.detail)
    );
    if let Some(h) = &f.hint {
        let _ = writeln!(out, "         hint: {}", escape(h));
    }
}

/// The report for a terminal or a cron mail.
pub fn text(r: &AuditReport, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        let _ = writeln!(
            out,
            "audit of repository {} — {}, {}, data read: {}{}",
            r.repository_id,
            count(r.stores.len(), "store"),
            count(r.snapshots.len(), "snapshot"),
            r.read_data,
            if r.deep { ", deep" } else { "" }
        );
        if let Some(p) = &r.provenance {
            provenance_text(&mut out, p);
        }
        for s in &r.stores {
            store_text(&mut out, s);
        }
        snapshots_text(&mut out, r);
    }
    for f in &r.problems {
        finding_text(&mut out, "problem", f);
    }
    if !quiet {
        for f in &r.warnings {
            finding_text(&mut out, "warning", f);
        }
        for n in r.notes.iter().chain(&r.ledger.notes) {
            let _ = writeln!(out, "note: {}", escape(n));
        }
        let _ = writeln!(
            out,
            "every object on every store read at least once in the last 30 days: {}",
            yes_no(r.coverage_complete)
        );
    }
    let _ = writeln!(out, "{}", verdict(r));
    out
}

fn store_text(out: &mut String, s: &StoreAudit) {
    let _ = writeln!(out, "  store {:<12} {}", s.store, store_line(s));
    if let Some(c) = &s.coverage {
        let _ = writeln!(
            out,
            "  {:<18} coverage ({} d): {} of objects, {} of bytes read and verified",
            "",
            c.window_days,
            percent(c.object_ratio),
            percent(c.byte_ratio)
        );
    }
    if let Some(d) = &s.deep {
        let _ = writeln!(
            out,
            "  {:<18} deep: {} ({}, {}) decrypted and verified, {} failed{}",
            "",
            count(d.snapshots as usize, "snapshot"),
            count(d.files as usize, "file"),
            size(d.bytes),
            d.failed,
            if d.files_reused > 0 {
                format!(
                    "; {} already verified in an earlier snapshot (same chunks, same SHA-256) not read again",
                    d.files_reused
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(i) = &s.immutability {
        let _ = writeln!(out, "  {:<18} {}", "", immutability_line(i));
    }
}

fn snapshots_text(out: &mut String, r: &AuditReport) {
    for row in r.snapshots.iter().filter(|s| !s.missing_from.is_empty()) {
        let _ = writeln!(
            out,
            "  snapshot {} in {}; not in {}",
            row.id,
            row.stores.join(", "),
            row.missing_from.join(", "),
        );
    }
    for d in &r.differences {
        let copies: Vec<String> = d
            .copies
            .iter()
            .map(|c| match &c.sha256 {
                Some(h) => format!(
                    "{}: {} bytes, SHA-256 {}…",
                    c.store,
                    c.size,
                    &h[..h.len().min(12)]
                ),
                None => format!("{}: {} bytes", c.store, c.size),
            })
            .collect();
        let _ = writeln!(
            out,
            "  differs between stores: {} ({})",
            d.object,
            copies.join(", ")
        );
    }
}

/// A Markdown report, fit for an audit trail.
pub fn markdown(r: &AuditReport) -> String {
    let mut md = format!("# snapdrill audit — repository {}\n\n", r.repository_id);
    let _ = writeln!(
        md,
        "Started {}, finished {}. Data read: {}. Deep: {}.\n\n**{}**\n",
        r.started,
        r.finished,
        r.read_data,
        yes_no(r.deep),
        verdict(r)
    );
    if let Some(p) = &r.provenance {
        provenance_markdown(&mut md, p);
    }
    md.push_str("## Stores\n\n| store | status | snapshots | objects listed | checked | read | problems | coverage, 30 d (objects / bytes) | refuses overwrites | refuses deletes |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |\n");
    for s in &r.stores {
        let cov = s.coverage.as_ref().map_or("—".into(), |c| {
            format!("{} / {}", percent(c.object_ratio), percent(c.byte_ratio))
        });
        let imm = |f: fn(&Immutability) -> Option<bool>| {
            s.immutability
                .as_ref()
                .map_or("not probed", |i| Immutability::word(f(i)))
        };
        let _ = writeln!(
            md,
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md_cell(&s.store),
            s.status,
            s.snapshots.len(),
            s.objects_listed,
            s.objects_checked,
            s.read.objects,
            s.problems,
            cov,
            imm(|i| i.refuses_overwrites),
            imm(|i| i.refuses_deletes)
        );
    }
    let _ = writeln!(
        md,
        "\nEvery object on every store read at least once in the last 30 days: **{}**.",
        yes_no(r.coverage_complete)
    );
    findings_md(&mut md, "Problems", &r.problems);
    findings_md(&mut md, "Warnings", &r.warnings);
    md.push_str("\n## Snapshots\n\n| snapshot | time | stores | missing from |\n| --- | --- | --- | --- |\n");
    for s in &r.snapshots {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            s.id,
            s.time,
            s.stores.join(", "),
            s.missing_from.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nLedger `{}`: {} entries, {} appended by this audit.",
        r.ledger.path, r.ledger.entries, r.ledger.appended
    );
    for n in r.notes.iter().chain(&r.ledger.notes) {
        let _ = writeln!(md, "- {}", md_cell(n));
    }
    md
}

fn findings_md(md: &mut String, title: &str, list: &[Finding]) {
    let _ = writeln!(md, "\n## {title}\n");
    if list.is_empty() {
        md.push_str("None.\n");
        return;
    }
    md.push_str("| store | object | kind | detail |\n| --- | --- | --- | --- |\n");
    for f in list {
        let _ = writeln!(
            md,
            "| {} | {} | {:?} | {} |",
            md_cell(&f.store),
            md_cell(&f.object),
            f.kind,
            md_cell(&f.detail)
        );
    }
}

/// A Prometheus textfile (node_exporter's textfile collector), one series per store.
pub fn prometheus(r: &AuditReport) -> String {
    let finished = format::parse_time(&r.finished)
        .map(super::coverage::unix_secs)
        .unwrap_or(0) as f64;
    let per = |f: &dyn Fn(&StoreAudit) -> Option<f64>| -> Vec<Sample> {
        r.stores
            .iter()
            .filter_map(|s| f(s).map(|v| (vec![("store", s.store.clone())], v)))
            .collect()
    };
    let reached = |s: &StoreAudit| s.status != StoreStatus::Unreachable;
    let probe = |f: fn(&Immutability) -> Option<bool>| {
        move |s: &StoreAudit| {
            s.immutability
                .as_ref()
                .and_then(f)
                .map(|v| f64::from(u8::from(v)))
        }
    };
    let mut t = Textfile::new();
    t.gauge(
        "snapdrill_audit_last_run_timestamp_seconds",
        "Unix time the last audit of the store finished.",
        per(&|_| Some(finished)),
    )
    .gauge(
        "snapdrill_audit_store_reachable",
        "1 if the last audit could list the store, else 0.",
        per(&|s| Some(f64::from(u8::from(reached(s))))),
    )
    .gauge(
        "snapdrill_audit_problems",
        "Integrity problems the last audit found in the store.",
        per(&|s| Some(s.problems as f64)),
    )
    .gauge(
        "snapdrill_audit_objects_checked",
        "Commits and objects the last audit checked in the store.",
        per(&|s| reached(s).then_some(s.objects_checked as f64)),
    )
    .gauge(
        "snapdrill_audit_objects_read",
        "Objects the last audit downloaded and hashed in the store.",
        per(&|s| reached(s).then_some(s.read.objects as f64)),
    )
    .gauge(
        "snapdrill_audit_coverage_ratio",
        "Share of the store's objects read and verified within the last 30 days.",
        per(&|s| s.coverage.as_ref().map(|c| c.object_ratio)),
    )
    .gauge(
        "snapdrill_audit_coverage_bytes_ratio",
        "Share of the store's bytes read and verified within the last 30 days.",
        per(&|s| s.coverage.as_ref().map(|c| c.byte_ratio)),
    )
    .gauge(
        "snapdrill_audit_refuses_overwrites",
        "1 if the store refused to overwrite the audit's canary object.",
        per(&probe(|i| i.refuses_overwrites)),
    )
    .gauge(
        "snapdrill_audit_refuses_deletes",
        "1 if the store refused to delete the audit's canary object.",
        per(&probe(|i| i.refuses_deletes)),
    );
    t.finish()
}

/// `by snapdrill 0.1.0 on HOST for OPERATOR, signer FP, command ...` (for a terminal).
fn provenance_text(out: &mut String, p: &super::provenance::Provenance) {
    let _ = writeln!(
        out,
        "  by snapdrill {} on {}{}; signer {} (fingerprint {}); coverage window {} days",
        escape(&p.tool_version),
        escape(&p.host),
        p.operator
            .as_deref()
            .map_or(String::new(), |o| format!(" for {}", escape(o))),
        escape(&p.signer),
        escape(&p.signer_fingerprint),
        p.coverage_window_days
    );
    let _ = writeln!(out, "  command: {}", escape(&p.command));
}

/// The provenance as a table (Markdown report).
fn provenance_markdown(md: &mut String, p: &super::provenance::Provenance) {
    let stores: Vec<String> = p
        .stores
        .iter()
        .map(|s| format!("{} ({})", s.name, s.url))
        .collect();
    let rows = [
        ("tool", format!("snapdrill {}", p.tool_version)),
        ("host", p.host.clone()),
        ("operator", p.operator.clone().unwrap_or_else(|| "—".into())),
        ("signer", p.signer.clone()),
        ("signer fingerprint", p.signer_fingerprint.clone()),
        ("stores", stores.join(", ")),
        ("command", p.command.clone()),
        (
            "coverage window",
            format!("{} days", p.coverage_window_days),
        ),
    ];
    md.push_str("## Provenance\n\n| | |\n| --- | --- |\n");
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {} |", md_cell(&v));
    }
    md.push('\n');
}

/// The audit records as a table: id, start, host, operator, verdict, coverage per store.
pub fn history(records: &[super::record::AuditRecord]) -> String {
    let mut out = format!(
        "{:<26} {:<26} {:<14} {:<14} {:<12} {}\n",
        "AUDIT", "STARTED", "HOST", "OPERATOR", "PROBLEMS", "COVERAGE (30 d, objects)"
    );
    for rec in records {
        let r = &rec.report;
        let p = r.provenance.as_ref();
        let coverage: Vec<String> = r
            .stores
            .iter()
            .map(|s| {
                let c = s
                    .coverage
                    .as_ref()
                    .map_or("—".into(), |c| percent(c.object_ratio));
                format!("{} {c}", escape(&s.store))
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<26} {:<26} {:<14} {:<14} {:<12} {}",
            escape(&rec.audit_id),
            escape(&r.started),
            p.map_or("—".into(), |p| escape(&p.host)),
            p.and_then(|p| p.operator.as_deref())
                .map_or("—".into(), escape),
            r.problems.len(),
            coverage.join(", ")
        );
    }
    let _ = writeln!(out, "{}", count(records.len(), "audit"));
    out
}

/// One warning per record copy that could not be read or authenticated.
pub fn untrusted_records(bad: &[crate::drill::record::BadRecord]) -> Vec<String> {
    bad.iter()
        .map(|b| {
            format!(
                "warning: audit record {} not trusted: {}",
                escape(&b.object),
                escape(&b.reason)
            )
        })
        .collect()
}
