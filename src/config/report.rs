//! `[report]`: the language and time zone of the HTML and Markdown drill reports.

use serde::Deserialize;

use crate::select::Zone;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReport {
    lang: Option<String>,
    time_zone: Option<String>,
}

/// A report's language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// `en` or `ja` (any case); the error says what is accepted.
    pub fn parse(s: &str) -> Result<Lang, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" | "english" => Ok(Lang::En),
            "ja" | "japanese" => Ok(Lang::Ja),
            other => Err(format!(
                "unknown report language '{other}': give en (English) or ja (Japanese)"
            )),
        }
    }

    /// The HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
}

/// The reports' settings.
#[derive(Debug, Clone, Default)]
pub struct ReportSettings {
    /// `[report] lang` (default English).
    pub lang: Lang,
    /// `[report] time_zone` (default: `[repository] timezone`).
    pub time_zone: Option<Zone>,
}

impl RawReport {
    /// The checked settings; errors name the key.
    pub(crate) fn check(self) -> Result<ReportSettings, String> {
        Ok(ReportSettings {
            lang: self
                .lang
                .as_deref()
                .map(Lang::parse)
                .transpose()
                .map_err(|e| format!("[report] lang: {e}"))?
                .unwrap_or_default(),
            time_zone: self
                .time_zone
                .as_deref()
                .map(Zone::named)
                .transpose()
                .map_err(|e| format!("[report] time_zone: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_report_settings_name_the_key_and_what_is_accepted() {
        let raw = |toml: &str| toml::from_str::<RawReport>(toml).unwrap().check();
        let ok = raw("lang = \"JA\"\ntime_zone = \"Asia/Tokyo\"").unwrap();
        assert_eq!(ok.lang, Lang::Ja);
        assert_eq!(ok.time_zone.unwrap().name(), "Asia/Tokyo");
        assert_eq!(raw("").unwrap().lang, Lang::En);
        let e = raw("lang = \"fr\"").unwrap_err();
        assert!(
            e.starts_with("[report] lang:") && e.contains("en") && e.contains("ja"),
            "{e}"
        );
        let e = raw("time_zone = \"Mars/Olympus\"").unwrap_err();
        assert!(
            e.starts_with("[report] time_zone:") && e.contains("Mars/Olympus"),
            "{e}"
        );
    }
}
