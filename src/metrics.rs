//! The Prometheus text exposition format, as node_exporter's textfile collector reads it:
//! the one writer behind every metrics file snapdrill writes (drills, audits).

use std::fmt::Write;

/// A metrics file being built: gauges, each with its help line and samples.
#[derive(Debug, Default)]
pub struct Textfile {
    out: String,
}

/// One sample: its labels (name, value) and its value.
pub type Sample<'a> = (Vec<(&'a str, String)>, f64);

impl Textfile {
    /// An empty file.
    pub fn new() -> Self {
        Textfile::default()
    }

    /// A gauge with one sample per label set; left out when it has no sample.
    pub fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a>>,
    ) -> &mut Self {
        let samples: Vec<Sample> = samples.into_iter().collect();
        if samples.is_empty() {
            return self;
        }
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
                .collect();
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
        self
    }

    /// The file's text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_written_in_the_exposition_format() {
        let mut t = Textfile::new();
        t.gauge(
            "a_total",
            "Help.",
            [(vec![("store", "to\"k\nyo".to_owned())], 1.5)],
        )
        .gauge("empty", "Left out.", []);
        assert_eq!(
            t.finish(),
            "# HELP a_total Help.\n# TYPE a_total gauge\na_total{store=\"to\\\"k\\nyo\"} 1.5\n"
        );
    }
}
