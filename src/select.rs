//! Selection: which snapshot a command means.
//!
//! Commands name a snapshot by a spec (`latest`, `latest~N`, an id or a unique part of one,
//! a day, a date-time) and narrow the candidates with `--host`, `--job` and `--tag`. This
//! module turns those into one snapshot, or into an error that lists the candidates, so
//! that every command reads specs and filters alike. Pure: no I/O, and it sees snapshots
//! only as [`Candidate`]s borrowed from the caller's listing.
//!
//! A *data set* is what one backup job on one host writes from one source: (host, job,
//! source). `latest` and dates are only meaningful within one data set, so when the
//! filters leave several, resolution refuses to guess and asks the user to choose.
//!
//! Days and date-times are read in a [`Zone`] (an IANA name from the configuration), and
//! the tz database is the one bundled into the binary, so that every host reads a date
//! the same way even without `/usr/share/zoneinfo`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{TimeZone, TimeZoneDatabase};

/// One snapshot as selection sees it: borrowed from the caller's snapshot list, so that
/// selection copies nothing and does not depend on how commits are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Snapshot id (e.g. `20261128T032718Z-9f2c1a7b`): what id specs match.
    pub id: &'a str,
    /// When it was taken: what `latest`, days and date-times order and match by.
    pub time: SystemTime,
    /// The host that took it: part of its data set, and what `--host` matches.
    pub host: &'a str,
    /// Its backup job; `None` for a format v1 snapshot, which `--job -` selects.
    pub job: Option<&'a str>,
    /// Identity of what was backed up (hex), when recorded: tells apart two data sets of
    /// one host and job.
    pub source: Option<&'a str>,
    /// Its tags: what `--tag` matches.
    pub tags: &'a [String],
}

/// The `--host`, `--job` and `--tag` options, which narrow every selection. An empty list
/// filters nothing. A snapshot passes when its host is one of `hosts`, its job one of
/// `jobs` (a snapshot without a job — format v1 — matches only the job name `-`), and, for
/// `tags`, when ANY element matches, an element being a comma-separated set `a,b` of tags
/// that must ALL be on the snapshot (restic's semantics; an empty element matches the
/// snapshots without tags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `--host`: the snapshot's host must be one of these.
    pub hosts: Vec<String>,
    /// `--job`: the snapshot's job (`-` for none) must be one of these.
    pub jobs: Vec<String>,
    /// `--tag`: the snapshot must carry every tag of at least one of these sets.
    pub tags: Vec<String>,
}

/// The job name that stands for "no job" (format v1 snapshots) in filters and labels.
const NO_JOB: &str = "-";

impl Filter {
    /// Does `c` pass every option? Commands keep only the snapshots that do.
    pub fn admits(&self, c: &Candidate) -> bool {
        self.excludes(c).is_none()
    }

    /// True when no option is given, so that callers can tell "everything" from "these".
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.jobs.is_empty() && self.tags.is_empty()
    }

    /// Why `c` does not pass, naming the option that excludes it; `None` when it passes.
    fn excludes(&self, c: &Candidate) -> Option<String> {
        if !self.hosts.is_empty() && !self.hosts.iter().any(|h| h == c.host) {
            return Some(format!(
                "its host '{}' is not one of {}",
                c.host,
                options("--host", &self.hosts)
            ));
        }
        let job = c.job.unwrap_or(NO_JOB);
        if !self.jobs.is_empty() && !self.jobs.iter().any(|j| j == job) {
            let jobs = options("--job", &self.jobs);
            return Some(match c.job {
                Some(j) => format!("its job '{j}' is not one of {jobs}"),
                None => format!(
                    "it is a format v1 snapshot without a job, which only `--job -` selects, \
                     not {jobs}"
                ),
            });
        }
        if !self.tags.is_empty() && !self.tags.iter().any(|set| tag_set_matches(set, c.tags)) {
            let has = match c.tags {
                [] => "it has no tags".to_owned(),
                tags => format!("its tags ({}) match", tags.join(", ")),
            };
            return Some(format!("{has} none of {}", options("--tag", &self.tags)));
        }
        None
    }

    /// The options as typed, e.g. `--host a --job db`; empty when there are none.
    fn describe(&self) -> String {
        [
            options("--host", &self.hosts),
            options("--job", &self.jobs),
            options("--tag", &self.tags),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// `--name v1 --name v2` for messages.
fn options(name: &str, values: &[String]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| {
            if v.is_empty() {
                format!("{name} ''")
            } else {
                format!("{name} {v}")
            }
        })
        .collect();
    quoted.join(" ")
}

/// Does a snapshot with `tags` carry every tag of the comma-separated `set`? An empty set
/// (`--tag ''`) asks for a snapshot without tags, as in restic.
fn tag_set_matches(set: &str, tags: &[String]) -> bool {
    let wanted: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if wanted.is_empty() {
        return tags.is_empty();
    }
    wanted.iter().all(|w| tags.iter().any(|t| t == w))
}

/// A time zone for display and for date specs, loaded by IANA name (UTC by default), so
/// that "2026-11-20" means the operator's day rather than UTC's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone(TimeZone);

/// Shown in place of a time that the calendar cannot hold (beyond year ±9999).
const OUT_OF_RANGE: &str = "(time out of range)";

/// The shapes [`Zone::parse_instant`] accepts, for its errors.
const INSTANT_SHAPES: &str = "give a day such as 2026-11-20, a local date-time such as \
     2026-11-20T14:00, '2026-11-20 14:00' or 2026-11-20T14:00:05, or an RFC 3339 timestamp \
     such as 2026-11-20T14:00:05Z or 2026-11-20T14:00:05+09:00";

impl Default for Zone {
    /// UTC, the zone when the configuration names none.
    fn default() -> Zone {
        Zone::utc()
    }
}

impl Zone {
    /// UTC: the default, and what snapshot ids are written in.
    pub fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// The zone with IANA name `name` (any case), from the bundled tz database so that
    /// every host reads it alike; the system's database serves only names the bundle
    /// lacks. The error names the zone and says what is expected.
    pub fn named(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("no time zone given: give an IANA name such as Asia/Tokyo or UTC".into());
        }
        TimeZoneDatabase::bundled()
            .get(name)
            .or_else(|_| jiff::tz::db().get(name))
            .map(Zone)
            .map_err(|_| {
                format!("unknown time zone '{name}': give an IANA name such as Asia/Tokyo or UTC")
            })
    }

    /// The zone's IANA name (e.g. `Asia/Tokyo`), for messages and reports.
    pub fn name(&self) -> String {
        self.0.iana_name().unwrap_or("UTC").to_owned()
    }

    /// `t` as `2026-11-20 12:34:56 +09:00` (to the second, with the offset), for tables:
    /// the offset keeps a pasted line unambiguous.
    pub fn show(&self, t: SystemTime) -> String {
        match Timestamp::try_from(t) {
            Ok(ts) => ts
                .to_zoned(self.0.clone())
                .strftime("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            Err(_) => OUT_OF_RANGE.to_owned(),
        }
    }

    /// The zone's offset from UTC at `t`, in seconds east (+32400 in Tokyo): what
    /// retention's local days, weeks and months are counted in.
    pub fn offset_secs(&self, t: SystemTime) -> i64 {
        Timestamp::try_from(t).map_or(0, |ts| i64::from(self.0.to_offset(ts).seconds()))
    }

    /// The local calendar day of `t`, as `2026-11-20`: what a day spec matches.
    pub fn day(&self, t: SystemTime) -> String {
        match Timestamp::try_from(t) {
            Ok(ts) => ts.to_zoned(self.0.clone()).date().to_string(),
            Err(_) => OUT_OF_RANGE.to_owned(),
        }
    }

    /// Read a user-given date or date-time in this zone: `2026-11-20` (the start of that
    /// local day), `2026-11-20T14:00`, `2026-11-20 14:00`, either with `:SS` (and a
    /// fraction), or an RFC 3339 timestamp with `Z` or an offset (then the zone is not
    /// used). The error quotes the input and lists the accepted shapes.
    pub fn parse_instant(&self, s: &str) -> Result<SystemTime, String> {
        let s = s.trim();
        let bad =
            |detail: String| format!("'{s}' is not a date or date-time{detail}: {INSTANT_SHAPES}");
        let shape = Shape::of(s).ok_or_else(|| bad(String::new()))?;
        let parsed = match shape {
            Shape::Day => s.parse::<Date>().and_then(|d| d.to_zoned(self.0.clone())),
            Shape::Local(t) => t
                .parse::<DateTime>()
                .and_then(|d| d.to_zoned(self.0.clone())),
            Shape::Absolute(t) => t.parse::<Timestamp>().map(|ts| ts.to_zoned(TimeZone::UTC)),
        };
        parsed
            .map(|z| SystemTime::from(z.timestamp()))
            .map_err(|e| bad(format!(" ({e})")))
    }
}

/// Which accepted shape a date or date-time has, with the text to hand to jiff (date and
/// time joined by `T`). Checked here, not left to jiff, which reads more forms (such as
/// `20261120`, which is an id prefix here).
enum Shape {
    /// `YYYY-MM-DD`.
    Day,
    /// A date and a time without offset: read in the zone.
    Local(String),
    /// A date, a time and `Z` or an offset.
    Absolute(String),
}

impl Shape {
    /// The shape of `s`, or `None` when it has none of the accepted ones.
    fn of(s: &str) -> Option<Shape> {
        let b = s.as_bytes();
        if b.len() < 10 || !is_date_shape(&b[..10]) {
            return None;
        }
        if b.len() == 10 {
            return Some(Shape::Day);
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        // Bytes 0..=10 are ASCII, so 10 and 11 are character boundaries.
        let rest = &s[11..];
        let (time, offset) = split_offset(rest);
        if !is_time_shape(time) || !offset.is_none_or(is_offset_shape) {
            return None;
        }
        let joined = format!("{}T{rest}", &s[..10]);
        Some(if offset.is_some() {
            Shape::Absolute(joined)
        } else {
            Shape::Local(joined)
        })
    }
}

/// `YYYY-MM-DD` as bytes (digits and dashes; the values are checked by jiff).
fn is_date_shape(b: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)
}

/// Split `14:00:05+09:00` into the time and the offset (`Z`, `+09:00`), if any.
fn split_offset(rest: &str) -> (&str, Option<&str>) {
    if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        return (time, Some("Z"));
    }
    match rest.find(['+', '-']) {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    }
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` (up to nine digits of fraction).
fn is_time_shape(t: &str) -> bool {
    let (whole, fraction) = match t.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (t, None),
    };
    let b = whole.as_bytes();
    let pair = |i: usize| b[i].is_ascii_digit() && b[i + 1].is_ascii_digit();
    let hm = b.len() >= 5 && pair(0) && b[2] == b':' && pair(3);
    let shape = match b.len() {
        5 => hm && fraction.is_none(),
        8 => hm && b[5] == b':' && pair(6),
        _ => false,
    };
    shape
        && fraction
            .is_none_or(|f| (1..=9).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()))
}

/// `Z`, or `+HH:MM` / `-HH:MM`.
fn is_offset_shape(o: &str) -> bool {
    let b = o.as_bytes();
    o == "Z"
        || (b.len() == 6
            && matches!(b[0], b'+' | b'-')
            && b[1..3].iter().all(u8::is_ascii_digit)
            && b[3] == b':'
            && b[4..6].iter().all(u8::is_ascii_digit))
}

/// A snapshot spec as typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `latest` (`back` 0) or `latest~N`: the newest snapshot of the data set, or the one
    /// N before it.
    Latest {
        /// How many snapshots to go back from the newest.
        back: usize,
    },
    /// A full snapshot id, a unique prefix of one, or a unique suffix of four or more
    /// characters (the random part).
    Id(String),
    /// `YYYY-MM-DD`: the newest snapshot of that local day.
    Day(String),
    /// A date-time: the newest snapshot at or before it.
    Until(SystemTime),
}

/// What a snapshot spec may be, for errors.
const SPEC_SHAPES: &str = "give 'latest', 'latest~N' (N snapshots before the latest), a \
     snapshot id or a unique part of one, a day such as 2026-11-20, or a date-time such as \
     2026-11-20T14:00";

impl Spec {
    /// Read a spec as typed; dates and date-times are read in `zone`. A text with dashes
    /// at 4 (and 7) is a date, as no snapshot id has one there: `2026-11-20` is a day,
    /// `20261120` an id prefix.
    pub fn parse(s: &str, zone: &Zone) -> Result<Spec, String> {
        let s = s.trim();
        if s == "latest" {
            return Ok(Spec::Latest { back: 0 });
        }
        if let Some(n) = s.strip_prefix("latest~") {
            return match n.parse::<usize>() {
                Ok(back) if n.bytes().all(|b| b.is_ascii_digit()) => Ok(Spec::Latest { back }),
                _ => Err(format!(
                    "'{s}': after 'latest~' give how many snapshots to go back, such as latest~1"
                )),
            };
        }
        let b = s.as_bytes();
        if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            let at = zone.parse_instant(s)?;
            return Ok(if b.len() == 10 {
                Spec::Day(s.to_owned())
            } else {
                Spec::Until(at)
            });
        }
        let id_char = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c) || "TZ-".contains(c);
        if !s.is_empty() && s.chars().all(id_char) {
            return Ok(Spec::Id(s.to_owned()));
        }
        Err(format!("'{s}' is not a snapshot spec: {SPEC_SHAPES}"))
    }
}

/// Why a spec did not resolve to exactly one snapshot. An ambiguity carries the candidates
/// (indexes into the caller's list) so that the error can list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No snapshot fits.
    None {
        /// What did not fit, in words for the user.
        why: String,
    },
    /// Several fit, and choosing among them is the user's call.
    Ambiguous {
        /// What is ambiguous and how to choose, in words for the user.
        why: String,
        /// The snapshots that fit (for data sets: the newest of each), newest first.
        candidates: Vec<usize>,
    },
}

impl Unresolved {
    /// The explanation, for callers that only print it.
    pub fn why(&self) -> &str {
        match self {
            Unresolved::None { why } | Unresolved::Ambiguous { why, .. } => why,
        }
    }
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.why())
    }
}

/// Resolve `spec` among `all` (oldest first) once `filter` and `before` (only snapshots
/// strictly older than it, when given) have narrowed them; the result is an index into
/// `all`.
///
/// - Id: an exact id wins; else a unique prefix or a unique suffix of four or more
///   characters. Several matches are ambiguous (listed newest first). An id that the
///   filter or `before` excludes does not resolve, and the why names what excluded it.
/// - `latest~N`, day and date-time specs first need the narrowed snapshots to form one
///   data set (host, job, source); several are ambiguous (the newest of each listed, and
///   the why says to choose with `--job` or `--host`). Then: the N-th before the newest;
///   the newest of that local day in `zone`; the newest at or before the date-time.
pub fn resolve(
    spec: &Spec,
    all: &[Candidate],
    filter: &Filter,
    before: Option<SystemTime>,
    zone: &Zone,
) -> Result<usize, Unresolved> {
    let scope = Scope {
        all,
        filter,
        before,
        zone,
    };
    match spec {
        Spec::Id(id) => scope.by_id(id),
        Spec::Latest { back } => scope.latest(*back),
        Spec::Day(day) => scope.on_day(day),
        Spec::Until(t) => scope.until(*t),
    }
}

/// What tells data sets apart: (host, job, source).
type DataSetKey<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// Group the indexes of `all` that pass `admitted` by data set (host, job, source): each
/// group oldest first, the groups ordered by their newest snapshot, newest last. Drills
/// use it to visit every data set, listings to show them apart.
pub fn data_sets(all: &[Candidate], admitted: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
    let mut groups: BTreeMap<DataSetKey, Vec<usize>> = BTreeMap::new();
    for (i, c) in all.iter().enumerate().filter(|(i, _)| admitted(*i)) {
        groups.entry((c.host, c.job, c.source)).or_default().push(i);
    }
    let mut sets: Vec<Vec<usize>> = groups.into_values().collect();
    for set in &mut sets {
        set.sort_by_key(|&i| (all[i].time, i));
    }
    sets.sort_by_key(|set| set.last().map(|&i| (all[i].time, i)));
    sets
}

/// How the data set of `c` is named in messages: `host/job`, or `host/job (source
/// 1a2b3c4d)` when `disambiguate` (another data set has the same host and job). A format
/// v1 snapshot, without a job, shows job `-`.
pub fn label(c: &Candidate, disambiguate: bool) -> String {
    let job = c.job.unwrap_or(NO_JOB);
    match (disambiguate, c.source) {
        (false, _) => format!("{}/{job}", c.host),
        (true, Some(source)) => format!(
            "{}/{job} (source {})",
            c.host,
            source.get(..8).unwrap_or(source)
        ),
        (true, None) => format!("{}/{job} (no source)", c.host),
    }
}

/// The inputs of one resolution.
struct Scope<'s, 'a> {
    all: &'s [Candidate<'a>],
    filter: &'s Filter,
    before: Option<SystemTime>,
    zone: &'s Zone,
}

/// An [`Unresolved::None`].
fn none(why: String) -> Unresolved {
    Unresolved::None { why }
}

/// `n snapshot(s)`.
fn snapshots(n: usize) -> String {
    format!("{n} snapshot{}", if n == 1 { "" } else { "s" })
}

impl Scope<'_, '_> {
    /// Does snapshot `i` pass the filter and `before`?
    fn admitted(&self, i: usize) -> bool {
        self.excluded(i).is_none()
    }

    /// What excludes snapshot `i`, in words; `None` when it is admitted.
    fn excluded(&self, i: usize) -> Option<String> {
        let c = &self.all[i];
        self.filter.excludes(c).or_else(|| {
            let before = self.before.filter(|b| c.time >= *b)?;
            Some(format!("it is not older than {}", self.zone.show(before)))
        })
    }

    /// ` matching --host a older than ...`: what narrowed the snapshots, for messages.
    fn narrowed(&self) -> String {
        let mut out = String::new();
        if !self.filter.is_empty() {
            out = format!(" matching {}", self.filter.describe());
        }
        if let Some(b) = self.before {
            out.push_str(&format!(" older than {}", self.zone.show(b)));
        }
        out
    }

    /// `indexes` ordered newest first.
    fn newest_first(&self, mut indexes: Vec<usize>) -> Vec<usize> {
        indexes.sort_by_key(|&i| std::cmp::Reverse((self.all[i].time, i)));
        indexes
    }

    /// The label of the data set of snapshot `i`, with its source when another data set
    /// in the list has the same host and job.
    fn set_label(&self, i: usize) -> String {
        let c = &self.all[i];
        let clash = self
            .all
            .iter()
            .any(|o| o.host == c.host && o.job == c.job && o.source != c.source);
        label(c, clash)
    }

    /// Snapshot `i`, if admitted; else why not.
    fn admit_one(&self, i: usize) -> Result<usize, Unresolved> {
        match self.excluded(i) {
            None => Ok(i),
            Some(why) => Err(none(format!(
                "snapshot {} is excluded: {why}",
                self.all[i].id
            ))),
        }
    }

    /// An id spec: exact, else a unique prefix or suffix among the admitted snapshots.
    fn by_id(&self, id: &str) -> Result<usize, Unresolved> {
        if let Some(i) = self.all.iter().position(|c| c.id == id) {
            return self.admit_one(i);
        }
        let fits = |c: &Candidate| c.id.starts_with(id) || (id.len() >= 4 && c.id.ends_with(id));
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..self.all.len())
            .filter(|&i| fits(&self.all[i]))
            .partition(|&i| self.admitted(i));
        match (inside.as_slice(), outside.as_slice()) {
            ([one], _) => Ok(*one),
            ([], []) => Err(none(format!(
                "no snapshot '{id}': `snapdrill snapshots` lists them (or use 'latest')"
            ))),
            ([], [one]) => self.admit_one(*one),
            ([], many) => Err(none(format!(
                "'{id}' matches {}, but none{}",
                snapshots(many.len()),
                self.narrowed()
            ))),
            (many, _) => Err(Unresolved::Ambiguous {
                why: format!(
                    "'{id}' matches {}; give more of the id",
                    snapshots(many.len())
                ),
                candidates: self.newest_first(inside),
            }),
        }
    }

    /// The admitted snapshots, oldest first, if they form one data set; else why not.
    fn one_data_set(&self) -> Result<Vec<usize>, Unresolved> {
        let mut sets = data_sets(self.all, |i| self.admitted(i));
        if sets.len() == 1 {
            return Ok(sets.pop().unwrap_or_default());
        }
        if sets.is_empty() {
            return Err(none(if self.all.is_empty() {
                "the repository holds no snapshot yet: run `snapdrill backup` first".to_owned()
            } else {
                format!("no snapshot{}", self.narrowed())
            }));
        }
        let newest: Vec<usize> = sets
            .iter()
            .rev()
            .filter_map(|s| s.last().copied())
            .collect();
        let names: Vec<String> = newest.iter().map(|&i| self.set_label(i)).collect();
        let first = &self.all[newest[0]];
        let same_job = newest
            .iter()
            .all(|&i| self.all[i].host == first.host && self.all[i].job == first.job);
        let choose = if same_job {
            "they differ only in their source: give a snapshot id"
        } else {
            "choose one with --job or --host, or give a snapshot id"
        };
        Err(Unresolved::Ambiguous {
            why: format!(
                "the snapshots of {} data sets match ({}); {choose}",
                sets.len(),
                names.join(", ")
            ),
            candidates: newest,
        })
    }

    /// `latest~back`.
    fn latest(&self, back: usize) -> Result<usize, Unresolved> {
        let set = self.one_data_set()?;
        if back < set.len() {
            return Ok(set[set.len() - 1 - back]);
        }
        let oldest = match set.len() {
            1 => "latest".to_owned(),
            n => format!("latest~{}", n - 1),
        };
        Err(none(format!(
            "data set {} has only {}{}, so latest~{back} does not exist ({oldest} is the oldest)",
            self.set_label(set[0]),
            snapshots(set.len()),
            self.narrowed()
        )))
    }

    /// The newest snapshot of local day `day` (`YYYY-MM-DD`).
    fn on_day(&self, day: &str) -> Result<usize, Unresolved> {
        let set = self.one_data_set()?;
        let found = set
            .iter()
            .rev()
            .find(|&&i| self.zone.day(self.all[i].time) == day);
        found.copied().ok_or_else(|| {
            none(format!(
                "data set {} has no snapshot{} on {day} ({} time)",
                self.set_label(set[0]),
                self.narrowed(),
                self.zone.name()
            ))
        })
    }

    /// The newest snapshot at or before `t`.
    fn until(&self, t: SystemTime) -> Result<usize, Unresolved> {
        let set = self.one_data_set()?;
        let found = set.iter().rev().find(|&&i| self.all[i].time <= t);
        found.copied().ok_or_else(|| {
            none(format!(
                "data set {} has no snapshot{} at or before {}: its oldest is from {}",
                self.set_label(set[0]),
                self.narrowed(),
                self.zone.show(t),
                self.zone.show(self.all[set[0]].time)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse_time;

    /// An owned snapshot for tests; [`Snap::candidate`] borrows it.
    struct Snap {
        id: String,
        time: SystemTime,
        host: String,
        job: Option<String>,
        source: Option<String>,
        tags: Vec<String>,
    }

    impl Snap {
        fn candidate(&self) -> Candidate<'_> {
            Candidate {
                id: &self.id,
                time: self.time,
                host: &self.host,
                job: self.job.as_deref(),
                source: self.source.as_deref(),
                tags: &self.tags,
            }
        }
    }

    fn t(s: &str) -> SystemTime {
        parse_time(s).unwrap()
    }

    /// A snapshot at `time` (RFC 3339) of `host`/`job` (`-` for none), id from the time
    /// and `hex`.
    fn snap(time: &str, hex: &str, host: &str, job: &str) -> Snap {
        let stamp: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
        Snap {
            id: format!("{stamp}-{hex}"),
            time: t(time),
            host: host.into(),
            job: (job != "-").then(|| job.into()),
            source: None,
            tags: Vec::new(),
        }
    }

    fn tagged(mut s: Snap, tags: &[&str]) -> Snap {
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    fn sourced(mut s: Snap, source: &str) -> Snap {
        s.source = Some(source.into());
        s
    }

    fn cands(snaps: &[Snap]) -> Vec<Candidate<'_>> {
        snaps.iter().map(Snap::candidate).collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn tokyo() -> Zone {
        Zone::named("Asia/Tokyo").unwrap()
    }

    /// One data set (h/db) of four snapshots, oldest first.
    fn one_set() -> Vec<Snap> {
        vec![
            snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db"),
            snap("2026-11-18T03:00:00Z", "bbbb0002", "h", "db"),
            snap("2026-11-19T16:00:00Z", "cccc0003", "h", "db"),
            snap("2026-11-20T03:00:00Z", "dddd0004", "h", "db"),
        ]
    }

    fn run(spec: &Spec, snaps: &[Snap], filter: &Filter) -> Result<usize, Unresolved> {
        resolve(spec, &cands(snaps), filter, None, &Zone::utc())
    }

    fn why_none(r: Result<usize, Unresolved>) -> String {
        match r {
            Err(Unresolved::None { why }) => why,
            other => panic!("expected None, got {other:?}"),
        }
    }

    fn ambiguous(r: Result<usize, Unresolved>) -> (String, Vec<usize>) {
        match r {
            Err(Unresolved::Ambiguous { why, candidates }) => (why, candidates),
            other => panic!("expected Ambiguous, got {other:?}"),
        }
    }

    // ---- Filter ----

    #[test]
    fn empty_filter_admits_everything() {
        let s = tagged(snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "-"), &["x"]);
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(f.admits(&s.candidate()));
        let f = Filter {
            tags: strings(&["x"]),
            ..Filter::default()
        };
        assert!(!f.is_empty());
    }

    #[test]
    fn filter_hosts_and_jobs_are_any_of() {
        let a = snap("2026-11-17T03:00:00Z", "aaaa0001", "alpha", "db");
        let b = snap("2026-11-17T03:00:00Z", "bbbb0002", "beta", "www");
        let f = Filter {
            hosts: strings(&["alpha", "gamma"]),
            ..Filter::default()
        };
        assert!(f.admits(&a.candidate()));
        assert!(!f.admits(&b.candidate()));
        let f = Filter {
            jobs: strings(&["www", "mail"]),
            ..Filter::default()
        };
        assert!(!f.admits(&a.candidate()));
        assert!(f.admits(&b.candidate()));
        let f = Filter {
            hosts: strings(&["alpha"]),
            jobs: strings(&["www"]),
            ..Filter::default()
        };
        assert!(!f.admits(&a.candidate()) && !f.admits(&b.candidate()));
    }

    #[test]
    fn v1_snapshot_matches_only_job_dash() {
        let v1 = snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "-");
        let v2 = snap("2026-11-17T03:00:00Z", "bbbb0002", "h", "db");
        let dash = Filter {
            jobs: strings(&["-"]),
            ..Filter::default()
        };
        assert!(dash.admits(&v1.candidate()));
        assert!(!dash.admits(&v2.candidate()));
        let db = Filter {
            jobs: strings(&["db"]),
            ..Filter::default()
        };
        assert!(!db.admits(&v1.candidate()));
        let why = db.excludes(&v1.candidate()).unwrap();
        assert_eq!(
            why,
            "it is a format v1 snapshot without a job, which only `--job -` selects, not --job db"
        );
    }

    #[test]
    fn tags_are_and_within_an_element_and_or_across() {
        let ab = tagged(
            snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db"),
            &["a", "b"],
        );
        let a = tagged(snap("2026-11-17T03:00:00Z", "bbbb0002", "h", "db"), &["a"]);
        let c = tagged(snap("2026-11-17T03:00:00Z", "cccc0003", "h", "db"), &["c"]);
        let none = snap("2026-11-17T03:00:00Z", "dddd0004", "h", "db");
        let and = Filter {
            tags: strings(&["a,b"]),
            ..Filter::default()
        };
        assert!(and.admits(&ab.candidate()));
        assert!(!and.admits(&a.candidate()));
        assert!(!and.admits(&c.candidate()));
        let or = Filter {
            tags: strings(&["a,b", "c"]),
            ..Filter::default()
        };
        assert!(or.admits(&ab.candidate()));
        assert!(!or.admits(&a.candidate()));
        assert!(or.admits(&c.candidate()));
        assert!(!or.admits(&none.candidate()));
        let untagged = Filter {
            tags: strings(&[""]),
            ..Filter::default()
        };
        assert!(untagged.admits(&none.candidate()));
        assert!(!untagged.admits(&a.candidate()));
        let why = and.excludes(&a.candidate()).unwrap();
        assert_eq!(why, "its tags (a) match none of --tag a,b");
    }

    // ---- Zone ----

    #[test]
    fn zones_load_by_iana_name_in_any_case() {
        assert_eq!(tokyo().name(), "Asia/Tokyo");
        assert_eq!(Zone::named("asia/TOKYO").unwrap().name(), "Asia/Tokyo");
        assert_eq!(Zone::utc().name(), "UTC");
        assert_eq!(Zone::default(), Zone::utc());
        assert_eq!(Zone::named("UTC").unwrap().name(), "UTC");
    }

    #[test]
    fn zones_resolve_without_a_system_tz_database() {
        // The bundled database alone (tzdb-bundle-always) knows the names.
        let db = TimeZoneDatabase::bundled();
        assert_eq!(
            db.get("Asia/Tokyo").unwrap().iana_name(),
            Some("Asia/Tokyo")
        );
        assert!(db.get("Europe/Berlin").is_ok());
    }

    #[test]
    fn unknown_zone_is_a_clear_error() {
        let e = Zone::named("Mars/Olympus_Mons").unwrap_err();
        assert!(e.contains("'Mars/Olympus_Mons'"), "{e}");
        assert!(e.contains("an IANA name such as Asia/Tokyo or UTC"), "{e}");
        let e = Zone::named(" ").unwrap_err();
        assert!(e.contains("an IANA name such as Asia/Tokyo or UTC"), "{e}");
    }

    #[test]
    fn show_and_day_use_the_zone_offset() {
        let at = t("2026-11-19T16:00:00Z");
        assert_eq!(tokyo().show(at), "2026-11-20 01:00:00 +09:00");
        assert_eq!(tokyo().day(at), "2026-11-20");
        assert_eq!(Zone::utc().show(at), "2026-11-19 16:00:00 +00:00");
        assert_eq!(Zone::utc().day(at), "2026-11-19");
        let ny = Zone::named("America/New_York").unwrap();
        assert_eq!(
            ny.show(t("2026-07-01T12:00:00Z")),
            "2026-07-01 08:00:00 -04:00"
        );
        assert_eq!(
            ny.show(t("2026-12-01T12:00:00Z")),
            "2026-12-01 07:00:00 -05:00"
        );
    }

    #[test]
    fn parse_instant_reads_local_shapes_in_the_zone() {
        let z = tokyo();
        assert_eq!(
            z.parse_instant("2026-11-20").unwrap(),
            t("2026-11-19T15:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20T14:00").unwrap(),
            t("2026-11-20T05:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20 14:00").unwrap(),
            t("2026-11-20T05:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20T14:00:05").unwrap(),
            t("2026-11-20T05:00:05Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20 14:00:05.5").unwrap(),
            t("2026-11-20T05:00:05.5Z")
        );
        assert_eq!(
            Zone::utc().parse_instant("2026-11-20").unwrap(),
            t("2026-11-20T00:00:00Z")
        );
    }

    #[test]
    fn parse_instant_with_offset_ignores_the_zone() {
        let z = tokyo();
        assert_eq!(
            z.parse_instant("2026-11-20T14:00:00Z").unwrap(),
            t("2026-11-20T14:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20 14:00:00z").unwrap(),
            t("2026-11-20T14:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20T14:00:00+02:00").unwrap(),
            t("2026-11-20T12:00:00Z")
        );
        assert_eq!(
            z.parse_instant("2026-11-20T14:00-05:00").unwrap(),
            t("2026-11-20T19:00:00Z")
        );
    }

    #[test]
    fn parse_instant_errors_quote_the_input_and_list_shapes() {
        let z = Zone::utc();
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-11-20T25:00",
            "2026-11-20X14:00",
            "2026-11-20T14",
            "20261120",
            "2026-11-20T14:00+9",
            "２０２６-11-20",
            "2026-11-2é",
            "",
        ] {
            let e = z.parse_instant(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("'{}' is not a date or date-time", bad.trim())),
                "{e}"
            );
            assert!(
                e.contains("2026-11-20T14:00") && e.contains("RFC 3339"),
                "{e}"
            );
        }
    }

    // ---- Spec ----

    #[test]
    fn spec_latest_and_latest_back() {
        let z = Zone::utc();
        assert_eq!(Spec::parse("latest", &z).unwrap(), Spec::Latest { back: 0 });
        assert_eq!(
            Spec::parse("latest~0", &z).unwrap(),
            Spec::Latest { back: 0 }
        );
        assert_eq!(
            Spec::parse("latest~3", &z).unwrap(),
            Spec::Latest { back: 3 }
        );
        for bad in [
            "latest~x",
            "latest~",
            "latest~-1",
            "latest~+1",
            "latest~1.5",
        ] {
            let e = Spec::parse(bad, &z).unwrap_err();
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains("latest~1"),
                "{e}"
            );
        }
    }

    #[test]
    fn spec_dashes_make_a_date_and_digits_an_id_prefix() {
        let z = tokyo();
        assert_eq!(
            Spec::parse("2026-11-20", &z).unwrap(),
            Spec::Day("2026-11-20".into())
        );
        assert_eq!(
            Spec::parse("20261120", &z).unwrap(),
            Spec::Id("20261120".into())
        );
        assert_eq!(
            Spec::parse("20261128T032718Z-9f2c1a7b", &z).unwrap(),
            Spec::Id("20261128T032718Z-9f2c1a7b".into())
        );
        assert_eq!(Spec::parse("9f2c", &z).unwrap(), Spec::Id("9f2c".into()));
        assert_eq!(
            Spec::parse("2026-11-20T14:00", &z).unwrap(),
            Spec::Until(t("2026-11-20T05:00:00Z"))
        );
        assert_eq!(
            Spec::parse("2026-11-20T14:00:00Z", &z).unwrap(),
            Spec::Until(t("2026-11-20T14:00:00Z"))
        );
    }

    #[test]
    fn spec_bad_inputs_are_clear_errors() {
        let z = Zone::utc();
        let e = Spec::parse("2026-13-01", &z).unwrap_err();
        assert!(
            e.starts_with("'2026-13-01' is not a date or date-time"),
            "{e}"
        );
        let e = Spec::parse("2026-11", &z).unwrap_err();
        assert!(e.starts_with("'2026-11' is not a date or date-time"), "{e}");
        for bad in ["yesterday", "", "9F2C", "abc def"] {
            let e = Spec::parse(bad, &z).unwrap_err();
            assert!(
                e.contains("is not a snapshot spec") && e.contains("latest~N"),
                "{e}"
            );
        }
    }

    // ---- resolve: ids ----

    #[test]
    fn exact_id_wins_over_a_longer_id_it_prefixes() {
        let mut a = snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db");
        let mut b = snap("2026-11-18T03:00:00Z", "aaaa0002", "h", "db");
        a.id = "abcd".into();
        b.id = "abcdef".into();
        let snaps = [a, b];
        assert_eq!(
            run(&Spec::Id("abcd".into()), &snaps, &Filter::default()),
            Ok(0)
        );
        assert_eq!(
            run(&Spec::Id("abcde".into()), &snaps, &Filter::default()),
            Ok(1)
        );
    }

    #[test]
    fn unique_prefix_and_unique_suffix_resolve() {
        let snaps = one_set();
        let f = Filter::default();
        assert_eq!(run(&Spec::Id("20261118".into()), &snaps, &f), Ok(1));
        assert_eq!(run(&Spec::Id("cccc0003".into()), &snaps, &f), Ok(2));
        assert_eq!(run(&Spec::Id("0004".into()), &snaps, &f), Ok(3));
        // Three characters are too few for a suffix.
        let why = why_none(run(&Spec::Id("004".into()), &snaps, &f));
        assert!(why.starts_with("no snapshot '004'"), "{why}");
    }

    #[test]
    fn ambiguous_prefix_lists_all_matches_newest_first() {
        let snaps = one_set();
        let (why, candidates) =
            ambiguous(run(&Spec::Id("202611".into()), &snaps, &Filter::default()));
        assert_eq!(candidates, vec![3, 2, 1, 0]);
        assert_eq!(why, "'202611' matches 4 snapshots; give more of the id");
        let (_, candidates) =
            ambiguous(run(&Spec::Id("2026111".into()), &snaps, &Filter::default()));
        assert_eq!(candidates, vec![2, 1, 0]);
    }

    #[test]
    fn id_excluded_by_the_filter_says_which_option() {
        let mut snaps = one_set();
        snaps[1].host = "other".into();
        let f = Filter {
            hosts: strings(&["h"]),
            ..Filter::default()
        };
        let why = why_none(run(&Spec::Id(snaps[1].id.clone()), &snaps, &f));
        assert_eq!(
            why,
            format!(
                "snapshot {} is excluded: its host 'other' is not one of --host h",
                snaps[1].id
            )
        );
        // A unique prefix of an excluded snapshot says the same.
        let why = why_none(run(&Spec::Id("20261118".into()), &snaps, &f));
        assert!(why.contains("its host 'other'"), "{why}");
        // A prefix shared with an excluded snapshot picks the admitted one.
        snaps[0].host = "other".into();
        let why = why_none(run(
            &Spec::Id("2026111".into()),
            &snaps,
            &Filter {
                hosts: strings(&["x"]),
                ..Filter::default()
            },
        ));
        assert_eq!(
            why,
            "'2026111' matches 3 snapshots, but none matching --host x"
        );
        assert_eq!(run(&Spec::Id("2026111".into()), &snaps, &f), Ok(2));
    }

    #[test]
    fn id_excluded_by_before_says_so() {
        let snaps = one_set();
        let c = cands(&snaps);
        let before = Some(snaps[2].time);
        let z = tokyo();
        let r = resolve(
            &Spec::Id(snaps[2].id.clone()),
            &c,
            &Filter::default(),
            before,
            &z,
        );
        let why = why_none(r);
        assert!(
            why.ends_with("it is not older than 2026-11-20 01:00:00 +09:00"),
            "{why}"
        );
        let r = resolve(
            &Spec::Id(snaps[1].id.clone()),
            &c,
            &Filter::default(),
            before,
            &z,
        );
        assert_eq!(r, Ok(1));
    }

    // ---- resolve: latest ----

    #[test]
    fn latest_and_latest_back_in_one_data_set() {
        let snaps = one_set();
        let f = Filter::default();
        assert_eq!(run(&Spec::Latest { back: 0 }, &snaps, &f), Ok(3));
        assert_eq!(run(&Spec::Latest { back: 1 }, &snaps, &f), Ok(2));
        assert_eq!(run(&Spec::Latest { back: 3 }, &snaps, &f), Ok(0));
        let why = why_none(run(&Spec::Latest { back: 4 }, &snaps, &f));
        assert_eq!(
            why,
            "data set h/db has only 4 snapshots, so latest~4 does not exist (latest~3 is the oldest)"
        );
        let why = why_none(run(&Spec::Latest { back: usize::MAX }, &snaps[..1], &f));
        assert!(
            why.contains("has only 1 snapshot,") && why.contains("(latest is the oldest)"),
            "{why}"
        );
    }

    #[test]
    fn latest_with_before_is_the_one_before() {
        let snaps = one_set();
        let c = cands(&snaps);
        let r = resolve(
            &Spec::Latest { back: 0 },
            &c,
            &Filter::default(),
            Some(snaps[3].time),
            &Zone::utc(),
        );
        assert_eq!(r, Ok(2));
        let r = resolve(
            &Spec::Latest { back: 0 },
            &c,
            &Filter::default(),
            Some(snaps[0].time),
            &Zone::utc(),
        );
        assert_eq!(
            why_none(r),
            "no snapshot older than 2026-11-17 03:00:00 +00:00"
        );
    }

    /// Two data sets on one host (db, www) and a v1 snapshot on another.
    fn mixed() -> Vec<Snap> {
        vec![
            snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db"),
            snap("2026-11-17T04:00:00Z", "bbbb0002", "h", "www"),
            snap("2026-11-18T03:00:00Z", "cccc0003", "h", "db"),
            snap("2026-11-18T05:00:00Z", "dddd0004", "old", "-"),
            snap("2026-11-19T03:00:00Z", "eeee0005", "h", "www"),
        ]
    }

    #[test]
    fn several_data_sets_are_ambiguous_and_list_each_newest() {
        let snaps = mixed();
        let (why, candidates) =
            ambiguous(run(&Spec::Latest { back: 0 }, &snaps, &Filter::default()));
        assert_eq!(candidates, vec![4, 3, 2]);
        assert_eq!(
            why,
            "the snapshots of 3 data sets match (h/www, old/-, h/db); \
             choose one with --job or --host, or give a snapshot id"
        );
        let f = Filter {
            hosts: strings(&["h"]),
            ..Filter::default()
        };
        let (_, candidates) = ambiguous(run(&Spec::Latest { back: 0 }, &snaps, &f));
        assert_eq!(candidates, vec![4, 2]);
        let f = Filter {
            jobs: strings(&["db"]),
            ..Filter::default()
        };
        assert_eq!(run(&Spec::Latest { back: 0 }, &snaps, &f), Ok(2));
        assert_eq!(run(&Spec::Latest { back: 1 }, &snaps, &f), Ok(0));
    }

    #[test]
    fn v1_snapshots_form_their_own_data_set() {
        let snaps = mixed();
        let f = Filter {
            jobs: strings(&["-"]),
            ..Filter::default()
        };
        assert_eq!(run(&Spec::Latest { back: 0 }, &snaps, &f), Ok(3));
        let why = why_none(run(&Spec::Latest { back: 1 }, &snaps, &f));
        assert!(
            why.starts_with("data set old/- has only 1 snapshot matching --job -"),
            "{why}"
        );
        assert_eq!(label(&snaps[3].candidate(), false), "old/-");
    }

    #[test]
    fn data_sets_differing_only_in_source_name_the_source() {
        let snaps = vec![
            sourced(
                snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db"),
                "1a2b3c4d5e6f",
            ),
            sourced(
                snap("2026-11-18T03:00:00Z", "bbbb0002", "h", "db"),
                "99887766aabb",
            ),
        ];
        let (why, candidates) =
            ambiguous(run(&Spec::Latest { back: 0 }, &snaps, &Filter::default()));
        assert_eq!(candidates, vec![1, 0]);
        assert_eq!(
            why,
            "the snapshots of 2 data sets match (h/db (source 99887766), h/db (source 1a2b3c4d)); \
             they differ only in their source: give a snapshot id"
        );
        assert_eq!(
            run(&Spec::Id("bbbb".into()), &snaps, &Filter::default()),
            Err(none(
                "no snapshot 'bbbb': `snapdrill snapshots` lists them (or use 'latest')".into()
            ))
        );
        assert_eq!(
            run(&Spec::Id("bbbb0002".into()), &snaps, &Filter::default()),
            Ok(1)
        );
    }

    #[test]
    fn nothing_to_choose_from() {
        let r = resolve(
            &Spec::Latest { back: 0 },
            &[],
            &Filter::default(),
            None,
            &Zone::utc(),
        );
        assert!(why_none(r).starts_with("the repository holds no snapshot yet"));
        let f = Filter {
            tags: strings(&["a,b"]),
            ..Filter::default()
        };
        assert_eq!(
            why_none(run(&Spec::Latest { back: 0 }, &one_set(), &f)),
            "no snapshot matching --tag a,b"
        );
    }

    // ---- resolve: days and date-times ----

    #[test]
    fn day_is_the_local_day_of_the_zone() {
        let snaps = one_set();
        let c = cands(&snaps);
        let f = Filter::default();
        let day = Spec::Day("2026-11-20".into());
        // 2026-11-19T16:00Z is 01:00 on the 20th in Tokyo; 03:00Z on the 20th is newer.
        assert_eq!(resolve(&day, &c, &f, None, &tokyo()), Ok(3));
        assert_eq!(resolve(&day, &c, &f, Some(snaps[3].time), &tokyo()), Ok(2));
        assert_eq!(
            resolve(&day, &c[..3], &f, None, &Zone::utc()).map_err(|e| e.to_string()),
            Err("data set h/db has no snapshot on 2026-11-20 (UTC time)".to_owned())
        );
        let day19 = Spec::Day("2026-11-19".into());
        assert_eq!(resolve(&day19, &c, &f, None, &Zone::utc()), Ok(2));
        let why = why_none(resolve(&day19, &c, &f, None, &tokyo()));
        assert_eq!(
            why,
            "data set h/db has no snapshot on 2026-11-19 (Asia/Tokyo time)"
        );
    }

    #[test]
    fn day_spec_end_to_end_in_tokyo() {
        let snaps = one_set();
        let z = tokyo();
        let spec = Spec::parse("2026-11-20", &z).unwrap();
        assert_eq!(
            resolve(&spec, &cands(&snaps[..3]), &Filter::default(), None, &z),
            Ok(2)
        );
    }

    #[test]
    fn until_is_the_newest_at_or_before() {
        let snaps = one_set();
        let f = Filter::default();
        assert_eq!(
            run(&Spec::Until(t("2026-11-19T00:00:00Z")), &snaps, &f),
            Ok(1)
        );
        assert_eq!(run(&Spec::Until(snaps[2].time), &snaps, &f), Ok(2));
        assert_eq!(
            run(&Spec::Until(t("2030-01-01T00:00:00Z")), &snaps, &f),
            Ok(3)
        );
        let why = why_none(run(&Spec::Until(t("2026-11-01T00:00:00Z")), &snaps, &f));
        assert_eq!(
            why,
            "data set h/db has no snapshot at or before 2026-11-01 00:00:00 +00:00: \
             its oldest is from 2026-11-17 03:00:00 +00:00"
        );
        let (_, candidates) = ambiguous(run(&Spec::Until(t("2030-01-01T00:00:00Z")), &mixed(), &f));
        assert_eq!(candidates, vec![4, 3, 2]);
    }

    // ---- data sets and labels ----

    #[test]
    fn data_sets_group_and_order_by_newest() {
        let snaps = mixed();
        let c = cands(&snaps);
        assert_eq!(
            data_sets(&c, |_| true),
            vec![vec![0, 2], vec![3], vec![1, 4]]
        );
        assert_eq!(
            data_sets(&c, |i| i != 4),
            vec![vec![1], vec![0, 2], vec![3]]
        );
        assert!(data_sets(&c, |_| false).is_empty());
    }

    #[test]
    fn data_sets_sort_each_group_by_time() {
        // Out of order input still yields each group oldest first.
        let snaps = vec![
            snap("2026-11-18T03:00:00Z", "aaaa0001", "h", "db"),
            snap("2026-11-17T03:00:00Z", "bbbb0002", "h", "db"),
        ];
        assert_eq!(data_sets(&cands(&snaps), |_| true), vec![vec![1, 0]]);
    }

    #[test]
    fn labels() {
        let plain = snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db");
        let with = sourced(
            snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "db"),
            "1a2b3c4d5e6f",
        );
        let v1 = snap("2026-11-17T03:00:00Z", "aaaa0001", "h", "-");
        assert_eq!(label(&plain.candidate(), false), "h/db");
        assert_eq!(label(&with.candidate(), false), "h/db");
        assert_eq!(label(&with.candidate(), true), "h/db (source 1a2b3c4d)");
        assert_eq!(label(&plain.candidate(), true), "h/db (no source)");
        assert_eq!(label(&v1.candidate(), false), "h/-");
    }

    #[test]
    fn unresolved_displays_its_why() {
        let u = Unresolved::Ambiguous {
            why: "two".into(),
            candidates: vec![1],
        };
        assert_eq!(u.to_string(), "two");
        assert_eq!(none("one".into()).why(), "one");
    }
}
