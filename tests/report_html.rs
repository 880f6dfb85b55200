//! The drill reports as evidence: a history with passes, an integrity failure, a check
//! failure, an RTO miss and an RPO miss over three stores, rendered in a real browser
//! (Debian's headless Chromium). The screenshot shows the RTO points off the zero line and
//! each drill's target; the failure reasons are text in the HTML and the Markdown; the PDF
//! holds every section; the Japanese page renders without tofu.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Env, code, json, random_bytes, show};

/// The first series' color in the report (src/report/chart.rs): tokyo's.
const TOKYO: [u8; 3] = [0x1f, 0x77, 0xb4];
/// The target bars' color.
const TARGET: [u8; 3] = [0xd6, 0x27, 0x28];
/// The RTO chart's height and bottom margin (src/report/chart.rs): the plot's bottom line.
const CHART_BOTTOM: usize = 330 - 64;

/// Three stores and one data set, and the history the issue describes; returns the env and
/// the integrity failure's reason as recorded.
fn history() -> (Env, String) {
    let env = Env::new(&["tokyo", "osaka", "sapporo"]);
    let src = env.tree(
        "exports",
        &[
            ("calls.bin", &random_bytes(3_000_000, 5)),
            ("customers.csv", b"id\n1\n"),
        ],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    let runs: [(&[&str], i32); 6] = [
        (
            &[
                "--each-store",
                "--rto",
                "30m",
                "--rpo",
                "26h",
                "--operator",
                "佐藤 健",
            ],
            0,
        ),
        (&["--each-store", "--verify-only", "--rto", "30m"], 0),
        (&["--store", "tokyo", "--sample", "50%", "--rto", "30m"], 0),
        (&["--store", "osaka", "--rto", "1ms"], 14),
        (&["--store", "sapporo", "--rpo", "1ms"], 14),
        (&["--store", "tokyo", "--check", "exit 3"], 15),
    ];
    for (args, want) in runs {
        let mut all = vec!["restore-drill"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert_eq!(code(&out), want, "{args:?}: {}", show(&out));
    }
    // A chunk lost in osaka: its next drill is an integrity failure naming object and store.
    let chunk = env
        .chunk_objects("osaka")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(chunk).unwrap();
    let out = env.run(&["restore-drill", "--store", "osaka", "--json"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let text = common::stdout(&out);
    let rec = json(&text[text.find('[').unwrap()..]);
    let reason = rec[0]["failures"][0].as_str().unwrap().to_owned();
    assert!(
        reason.contains("chunks/") && reason.contains("osaka"),
        "{reason}"
    );
    (env, reason)
}

#[test]
fn the_reports_show_every_result_with_its_reason_and_the_pdf_every_section() {
    common::require_tool("chromium", "chromium");
    common::require_tool("pdftotext", "poppler-utils");
    let (env, integrity) = history();
    // An audit kept in the repository: osaka lacks a chunk.
    let out = env.run(&["audit", "--record", "--operator", "佐藤 健"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let (html, md, pdf) = (
        env.p("drills.html"),
        env.p("drills.md"),
        env.p("drills.pdf"),
    );
    env.ok(&[
        "report",
        "--html",
        html.to_str().unwrap(),
        "--md",
        md.to_str().unwrap(),
        "--pdf",
        pdf.to_str().unwrap(),
    ]);
    let page = fs::read_to_string(&html).unwrap();
    let text = fs::read_to_string(&md).unwrap();
    self_contained(&page);
    // The reasons, as text: the object and store, the check command and its status, the
    // missed targets.
    let html_esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    assert!(page.contains(&html_esc(&integrity)), "{integrity}");
    assert!(text.contains(&integrity.replace('`', "'")), "{integrity}");
    for (in_html, in_md) in [
        (
            "the check `exit 3` exited with status 3",
            "the check 'exit 3' exited with status 3",
        ),
        ("over the target 1 ms", "over the target 1 ms"),
    ] {
        assert!(page.contains(in_html), "HTML lacks {in_html}");
        assert!(text.contains(in_md), "Markdown lacks {in_md}:\n{text}");
    }
    assert!(page.contains("RTO") && page.contains("RPO") && text.contains("RPO"));
    for label in ["CHECK FAILED", "INTEGRITY FAILURE", "TARGET MISSED", "PASS"] {
        assert!(page.contains(label) && text.contains(label), "{label}");
    }
    markdown_is_a_drill_log(&env, &text);
    // The latest audit's verdict per store in the summary, and the audit history.
    for doc in [&page, &text] {
        assert!(
            doc.contains("Audit history and 30-day read coverage per store"),
            "{doc}"
        );
        assert!(doc.contains("problems: "), "{doc}");
        assert!(doc.contains(", 30-day coverage"), "{doc}");
        assert!(doc.contains("clean, 30-day coverage"), "{doc}");
    }
    // Visible labels, not tooltips: the document's title is the only <title>.
    assert_eq!(page.matches("<title>").count(), 1);
    // Modes are separate series with their own markers; RPO has its own chart.
    let rto = svg(&page, "rto-chart");
    for marker in [
        "<circle class=\"point\"",
        "<rect class=\"point\"",
        "<polygon class=\"point\"",
    ] {
        assert!(rto.contains(marker), "RTO chart lacks {marker}");
    }
    assert!(page.contains("id=\"rpo-chart\"") && page.contains("id=\"timeline\""));
    rto_chart_in_chromium(&env, &page);

    let out = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let pdf_text = String::from_utf8_lossy(&out.stdout).replace(['\n', '\r'], " ");
    for heading in [
        "Summary: latest full drill per data set and store",
        "Drills that did not pass, and why",
        "Recovery time (RTO) per drill",
        "Recovery point (RPO) per drill",
        "Throughput per drill",
        "Results by store and date",
        "Latest drill: phases",
        "All drills (newest first)",
        "Audit history and 30-day read coverage per store",
    ] {
        assert!(
            pdf_text.contains(heading),
            "the PDF lacks {heading}:\n{pdf_text}"
        );
    }
}

/// Newest first, with operator, drill id, IEC sizes, the summary line, and `—` for an RTO
/// never reached.
fn markdown_is_a_drill_log(env: &Env, text: &str) {
    let drills = json(&env.ok(&["drills", "--json"]));
    let drills = drills.as_array().unwrap();
    assert_eq!(drills.len(), 11);
    assert!(
        text.contains("11 drills: 7 passed, 4 did not pass"),
        "{text}"
    );
    let mut by_time: Vec<&serde_json::Value> = drills.iter().collect();
    by_time.sort_by_key(|d| d["started"].as_str().unwrap().to_owned());
    let all = &text[text.find("## All drills").unwrap()..];
    let at = |d: &serde_json::Value| all.find(d["drill_id"].as_str().unwrap()).unwrap();
    assert!(at(by_time[10]) < at(by_time[0]), "newest first");
    assert!(text.contains("佐藤 健"));
    assert!(
        text.contains(" MiB") && !text.contains(" MB |"),
        "IEC sizes"
    );
    let failed = by_time[10];
    let line = all
        .lines()
        .find(|l| l.contains(failed["drill_id"].as_str().unwrap()))
        .unwrap();
    // Its RTO cell (found by the table's header) is "—", not a time it never reached (any
    // other cell may hold a duration such as "450 ms").
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_owned()).collect() };
    let header = cells(all.lines().find(|l| l.starts_with('|')).unwrap());
    let rto = header
        .iter()
        .position(|c| c == "RTO")
        .expect("an RTO column");
    assert_eq!(cells(line)[rto], "—", "{line}");
}

fn self_contained(page: &str) {
    // The only URLs on the page are SVG namespace declarations: nothing is fetched.
    assert_eq!(
        page.matches("http").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "the page refers to an outside resource"
    );
    assert!(
        !page.contains("<script") && !page.contains("src="),
        "the page must be self-contained"
    );
}

/// The `<svg id=ID>` element of the page.
fn svg<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("<svg id=\"{id}\"")).unwrap();
    let end = start + page[start..].find("</svg>").unwrap() + "</svg>".len();
    &page[start..end]
}

/// The RTO chart alone, at its own size (1 CSS pixel per unit), screenshot: tokyo's three
/// recovered drills (full, verify-only, sample) are well above the plot's bottom, and the
/// targets of 30 min and 1 ms are drawn at different heights.
fn rto_chart_in_chromium(env: &Env, page: &str) {
    let style = &page[page.find("<style>").unwrap()..page.find("</style>").unwrap() + 8];
    let alone = env.p("rto.html");
    fs::write(
        &alone,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">{style}</head>\
             <body style=\"margin:0;max-width:none\"><div style=\"width:962px\">{}</div></body></html>",
            svg(page, "rto-chart")
        ),
    )
    .unwrap();
    let (w, h, px) = screenshot(env, &alone, "1000,400");
    let near = |x: usize, y: usize, c: [u8; 3]| {
        px[(y * w + x) * 3..][..3]
            .iter()
            .zip(c)
            .all(|(a, b)| a.abs_diff(b) <= 6)
    };
    let points = blobs(w, h, |x, y| near(x, y, TOKYO));
    assert_eq!(points.len(), 3, "tokyo's recovered drills: {points:?}");
    for p in &points {
        assert!(
            p.1 + 20 < CHART_BOTTOM,
            "a point sits on the zero line: {points:?}"
        );
    }
    let targets = blobs(w, h, |x, y| near(x, y, TARGET));
    let (lo, hi) = targets
        .iter()
        .fold((usize::MAX, 0), |(a, b), t| (a.min(t.1), b.max(t.1)));
    assert!(
        hi > lo + 100,
        "the 30 min and 1 ms targets at their own heights: {targets:?}"
    );
}

/// A headless Chromium screenshot of `page`: width, height, RGB pixels.
fn screenshot(env: &Env, page: &Path, window: &str) -> (usize, usize, Vec<u8>) {
    let shot = page.with_extension("png");
    let profile = env.p("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={window}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| p[..3].to_vec())
        .collect();
    fs::remove_file(&shot).unwrap();
    (info.width as usize, info.height as usize, rgb)
}

#[test]
fn the_japanese_report_has_japanese_labels_local_times_and_no_tofu() {
    common::require_tool("chromium", "chromium");
    let fonts = Command::new("fc-list").arg(":lang=ja").output();
    assert!(
        fonts.is_ok_and(|o| !o.stdout.is_empty()),
        "this test needs a Japanese font: run scripts/ensure-tools.sh (Debian: apt-get install fonts-noto-cjk)"
    );
    let env = Env::new(&["tokyo"]);
    let mut config = fs::read_to_string(env.config()).unwrap();
    config.push_str("\n[report]\ntime_zone = \"Asia/Tokyo\"\n");
    fs::write(env.config(), config).unwrap();
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["restore-drill", "--operator", "佐藤 健", "--rto", "30m"]);
    assert_eq!(env.code(&["restore-drill", "--check", "exit 3"]), 15);
    let (html, md) = (env.p("ja.html"), env.p("ja.md"));
    env.ok(&[
        "report",
        "--lang",
        "ja",
        "--html",
        html.to_str().unwrap(),
        "--md",
        md.to_str().unwrap(),
    ]);
    let page = fs::read_to_string(&html).unwrap();
    let text = fs::read_to_string(&md).unwrap();
    for doc in [&page, &text] {
        for label in [
            "訓練結果",
            "目標復旧時間 (RTO)",
            "目標復旧時点 (RPO)",
            "合格",
            "不合格（検証コマンド失敗）",
            "全訓練の記録",
            "実施者",
            "Asia/Tokyo",
            "+09:00",
            "佐藤 健",
        ] {
            assert!(doc.contains(label), "lacks {label}:\n{doc}");
        }
        for english in ["All drills", "Summary:", "CHECK FAILED", "operator"] {
            assert!(!doc.contains(english), "English left: {english}");
        }
    }
    assert!(page.contains("<html lang=\"ja\">"));
    assert!(page.contains("\"Noto Sans CJK JP\", \"Hiragino Sans\", \"Yu Gothic\", \"Meiryo\""));
    // No tofu. A missing glyph is drawn as a box (Chromium writes the code point in it),
    // whatever the character; a real ideograph is strokes. So the page is rendered again
    // with every CJK character replaced by 一 (one stroke): with a CJK font, the real page
    // has far more ink than that one; with boxes, about the same.
    let strokes: String = page
        .chars()
        .map(|c| if is_cjk(c) { '一' } else { c })
        .collect();
    let cjk = page.chars().filter(|&c| is_cjk(c)).count();
    let one_stroke = env.p("one-stroke.html");
    fs::write(&one_stroke, strokes).unwrap();
    let ink = |px: &[u8]| {
        px.chunks(3)
            .filter(|p| p.iter().map(|&v| u32::from(v)).sum::<u32>() < 3 * 140)
            .count()
    };
    let (_, _, real) = screenshot(&env, &html, "1100,1400");
    let (_, _, flat) = screenshot(&env, &one_stroke, "1100,1400");
    let (real, flat) = (ink(&real), ink(&flat));
    assert!(
        real > flat + 10 * cjk,
        "the Japanese text renders as boxes (tofu): {real} dark pixels, {flat} with every one of the {cjk} CJK characters as 一"
    );
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x30FF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF)
}

#[test]
fn report_pdf_without_a_browser_says_how_to_get_one() {
    let env = Env::new(&["tokyo"]);
    let pdf = env.p("drills.pdf");
    let out = env
        .cmd(&["report", "--pdf", pdf.to_str().unwrap()])
        .env("PATH", env.p("empty-bin"))
        .env_remove("SNAPDRILL_CHROMIUM")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", show(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("no headless Chromium") && err.contains("SNAPDRILL_CHROMIUM"),
        "{err}"
    );
    assert!(!pdf.exists());
    let out = env
        .cmd(&["report", "--pdf", pdf.to_str().unwrap()])
        .env("SNAPDRILL_CHROMIUM", env.p("no-such-chromium"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        common::stderr(&out).contains("no-such-chromium"),
        "{}",
        show(&out)
    );
}

/// Connected components of matching pixels: (center x, center y, pixel count), at least
/// 15 pixels each (anti-aliased edges and stray pixels are ignored).
fn blobs(w: usize, h: usize, hit: impl Fn(usize, usize) -> bool) -> Vec<(usize, usize, usize)> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    for start in 0..w * h {
        if seen[start] || !hit(start % w, start / w) {
            continue;
        }
        let (mut n, mut sx, mut sy) = (0, 0, 0);
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            n += 1;
            sx += x;
            sy += y;
            let neighbours = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in neighbours {
                if nx < w && ny < h && !seen[ny * w + nx] && hit(nx, ny) {
                    seen[ny * w + nx] = true;
                    stack.push(ny * w + nx);
                }
            }
        }
        if n >= 15 {
            out.push((sx / n, sy / n, n));
        }
    }
    out
}
