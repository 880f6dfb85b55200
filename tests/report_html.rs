//! The HTML drill report renders in a real browser (Debian's headless Chromium) and the
//! screenshot shows the RTO and throughput charts drawn with one point per drill.

mod common;

use std::fs;
use std::process::Command;

use common::{Env, random_bytes};

/// The first store's series color in the report (src/report/html.rs).
const STORE_COLOR: [u8; 3] = [0x1f, 0x77, 0xb4];

#[test]
fn the_html_report_draws_every_drill_in_chromium() {
    common::require_tool("chromium", "chromium");
    let env = Env::new(&["tokyo"]);
    let src = env.tree(
        "exports",
        &[
            ("calls.bin", &random_bytes(3_000_000, 5)),
            ("customers.csv", b"id\n1\n"),
        ],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    for args in [
        vec!["restore-drill", "--rto", "30m"],
        vec!["restore-drill", "--verify-only"],
        vec!["restore-drill", "--sample", "50%"],
    ] {
        env.ok(&args);
    }
    let html = env.p("drills.html");
    env.ok(&["report", "--html", html.to_str().unwrap()]);
    let page = fs::read_to_string(&html).unwrap();
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
    assert_eq!(
        page.matches("class=\"point\"").count(),
        6,
        "3 drills x (RTO + throughput)"
    );

    let shot = env.p("shot.png");
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
            "--window-size=1100,2600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
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
    let (w, h) = (info.width as usize, info.height as usize);
    let is_point = |x: usize, y: usize| {
        let p = &buf[(y * w + x) * channels..][..3];
        p.iter().zip(STORE_COLOR).all(|(a, b)| a.abs_diff(b) <= 6)
    };
    let blobs = blobs(w, h, is_point);
    // Six chart points plus the legend's dot, each a solid disc of the store's color.
    assert_eq!(
        blobs.len(),
        7,
        "blobs of the store color (x, y, pixels): {blobs:?}"
    );
    // The RTO chart is the first chart: its three points are the three topmost non-legend
    // blobs after the legend, at three different times (x) from left to right.
    let mut by_y = blobs.clone();
    by_y.sort_by_key(|b| b.1);
    let rto_points = &by_y[1..4];
    let mut xs: Vec<usize> = rto_points.iter().map(|b| b.0).collect();
    xs.sort_unstable();
    assert!(
        xs.windows(2).all(|p| p[1] > p[0] + 10),
        "three distinct drill times: {rto_points:?}"
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
