//! Units for people: sizes, counts and durations, written and read the same way
//! everywhere (terminal, reports, config, command line).

/// `1.5 MiB`-style sizes (binary units, as `ls -h` and the CLI print them).
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `300.0 MB`-style sizes (decimal units), beside throughputs in MB/s.
pub fn decimal_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// "1 chunk", "2 chunks": a count with its noun (regular plural).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A measured value against its target, for reports and result lines: `41 s (target
/// 30 min)`, `2 h (target 1 h, MISSED)`, the value alone without a target, `—` without a
/// value.
pub fn versus(value: Option<f64>, target: Option<f64>) -> String {
    match (value, target) {
        (Some(v), Some(t)) => format!(
            "{} (target {}{})",
            duration(v),
            duration(t),
            if v > t { ", MISSED" } else { "" }
        ),
        (Some(v), None) => duration(v),
        (None, _) => "—".into(),
    }
}

/// Human duration: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 10 min`.
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{} min {:02} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// A size or a share of something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// This fraction (0 < f <= 1), written as a percentage.
    Share(f64),
    /// This many bytes.
    Bytes(u64),
}

/// Parse `10%`, `0.5%`, `500MB`, `2GiB`, `1048576` (bytes).
pub fn parse_amount(s: &str) -> Result<Amount, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a percentage"))?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(format!("'{s}': a share is more than 0% and at most 100%"));
        }
        return Ok(Amount::Share(v / 100.0));
    }
    parse_size(s).map(Amount::Bytes)
}

/// Parse `500MB`, `2GiB`, `20MiB`, `1048576` (decimal and binary units; a plain number is
/// bytes). Zero and negative sizes are refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (write e.g. 500MB, 2GiB)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("'{s}': unknown unit '{other}'")),
    };
    if n <= 0.0 {
        return Err(format!("'{s}': a size must be larger than 0"));
    }
    Ok((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares_parse() {
        assert_eq!(parse_amount("10%").unwrap(), Amount::Share(0.1));
        assert_eq!(parse_amount("500MB").unwrap(), Amount::Bytes(500_000_000));
        assert_eq!(parse_amount("2GiB").unwrap(), Amount::Bytes(2 << 30));
        assert_eq!(parse_amount("1024").unwrap(), Amount::Bytes(1024));
        for bad in ["0%", "101%", "ten", "5 parsecs", "-3MB", "0"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(binary_size(1536), "1.5 KiB");
        assert_eq!(binary_size(12), "12 B");
        assert_eq!(decimal_size(300_000_000), "300.0 MB");
        assert_eq!(count(1, "chunk"), "1 chunk");
        assert_eq!(count(3, "chunk"), "3 chunks");
        assert_eq!(duration(0.85), "850 ms");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(7800.0), "2 h 10 min");
    }
}
