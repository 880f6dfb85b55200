//! Every word the HTML and Markdown reports print, in English and in Japanese. The
//! records themselves stay in English (they are evidence read by tools); only their
//! presentation is translated.

use crate::drill::DrillResult;

pub use crate::config::report::Lang;

impl Lang {
    /// The language's labels.
    pub(crate) fn labels(self) -> &'static Labels {
        match self {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }
}

/// The words of one language. Templates hold `{name}` placeholders.
#[derive(Debug)]
pub(crate) struct Labels {
    /// The default title.
    pub(crate) title: &'static str,
    /// `{when}`, `{version}`, `{n}`, `{zone}`.
    pub(crate) generated: &'static str,
    /// No record at all.
    pub(crate) no_drills: &'static str,
    /// `{n}`, `{passed}`, `{failed}`, `{overdue}`.
    pub(crate) summary_line: &'static str,
    /// Section headings.
    pub(crate) h_summary: &'static str,
    pub(crate) h_failures: &'static str,
    pub(crate) h_rto: &'static str,
    pub(crate) h_rpo: &'static str,
    pub(crate) h_throughput: &'static str,
    pub(crate) h_timeline: &'static str,
    pub(crate) h_phases: &'static str,
    pub(crate) h_all: &'static str,
    /// Column headings.
    pub(crate) c_data_set: &'static str,
    pub(crate) c_store: &'static str,
    pub(crate) c_verdict: &'static str,
    pub(crate) c_last_full: &'static str,
    pub(crate) c_result: &'static str,
    pub(crate) c_rto: &'static str,
    pub(crate) c_rpo: &'static str,
    pub(crate) c_due: &'static str,
    pub(crate) c_reason: &'static str,
    pub(crate) c_when: &'static str,
    pub(crate) c_drill: &'static str,
    pub(crate) c_mode: &'static str,
    pub(crate) c_operator: &'static str,
    pub(crate) c_host: &'static str,
    pub(crate) c_data: &'static str,
    pub(crate) c_first_byte: &'static str,
    pub(crate) c_throughput: &'static str,
    pub(crate) c_phase: &'static str,
    pub(crate) c_time: &'static str,
    /// Verdicts of the summary.
    pub(crate) v_ok: &'static str,
    pub(crate) v_attention: &'static str,
    pub(crate) v_overdue: &'static str,
    pub(crate) v_no_full: &'static str,
    /// `{date}`.
    pub(crate) due_on: &'static str,
    /// `{date}`.
    pub(crate) overdue_since: &'static str,
    pub(crate) no_interval: &'static str,
    /// `{value}` `{target}`.
    pub(crate) versus: &'static str,
    pub(crate) missed: &'static str,
    pub(crate) estimate: &'static str,
    pub(crate) target_each: &'static str,
    pub(crate) not_recovered: &'static str,
    pub(crate) no_data: &'static str,
    pub(crate) files: &'static str,
    /// Results, in [`DrillResult::ALL`] order.
    pub(crate) results: [&'static str; 6],
    /// Short results for the timeline's cells, in the same order.
    pub(crate) short_results: [&'static str; 6],
    /// `full`, `verify-only`, `sample`.
    pub(crate) modes: [&'static str; 3],
    /// The four phases, then the RTO line.
    pub(crate) phases: [&'static str; 5],
    pub(crate) log_scale: &'static str,
    /// The audit history.
    pub(crate) h_audits: &'static str,
    pub(crate) no_audits: &'static str,
    pub(crate) c_latest_audit: &'static str,
    pub(crate) a_audit: &'static str,
    pub(crate) a_problems_col: &'static str,
    pub(crate) a_clean: &'static str,
    /// `{n}`.
    pub(crate) a_problems: &'static str,
    pub(crate) a_coverage: &'static str,
    pub(crate) a_unreachable: &'static str,
}

impl Labels {
    /// The columns of the summary table (HTML and Markdown alike).
    pub(crate) fn summary_columns(&self) -> [&'static str; 10] {
        [
            self.c_data_set,
            self.c_store,
            self.c_verdict,
            self.c_last_full,
            self.c_result,
            self.c_rto,
            self.c_rpo,
            self.c_due,
            self.c_latest_audit,
            self.c_reason,
        ]
    }

    /// A result's label.
    pub(crate) fn result(&self, r: DrillResult) -> &'static str {
        let i = DrillResult::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.results[i]
    }

    /// A result's short label (timeline cells).
    pub(crate) fn short(&self, r: DrillResult) -> &'static str {
        let i = DrillResult::ALL.iter().position(|&x| x == r).unwrap_or(0);
        self.short_results[i]
    }

    /// A mode's label (`full`, `verify-only`, `sample`; anything else as written).
    pub(crate) fn mode<'a>(&self, mode: &'a str) -> &'a str {
        match mode {
            "full" => self.modes[0],
            "verify-only" => self.modes[1],
            "sample" => self.modes[2],
            other => other,
        }
    }
}

/// English.
pub(crate) static EN: Labels = Labels {
    title: "snapdrill restore drills",
    generated: "Generated {when} by snapdrill {version}. {n} drills recorded. Times are in {zone}.",
    no_drills: "No drill has been recorded yet.",
    summary_line: "{n} drills: {passed} passed, {failed} did not pass; {overdue} data set and store pairs overdue or without a full drill.",
    h_summary: "Summary: latest full drill per data set and store",
    h_failures: "Drills that did not pass, and why",
    h_rto: "Recovery time (RTO) per drill",
    h_rpo: "Recovery point (RPO) per drill",
    h_throughput: "Throughput per drill",
    h_timeline: "Results by store and date",
    h_phases: "Latest drill: phases",
    h_all: "All drills (newest first)",
    c_data_set: "data set",
    c_store: "store",
    c_verdict: "verdict",
    c_last_full: "last full drill",
    c_result: "result",
    c_rto: "RTO",
    c_rpo: "RPO",
    c_due: "next full drill due",
    c_reason: "reason",
    c_when: "when",
    c_drill: "drill",
    c_mode: "mode",
    c_operator: "operator",
    c_host: "host",
    c_data: "data",
    c_first_byte: "first byte",
    c_throughput: "throughput",
    c_phase: "phase",
    c_time: "time",
    v_ok: "OK",
    v_attention: "ATTENTION",
    v_overdue: "OVERDUE",
    v_no_full: "NO FULL DRILL",
    due_on: "due {date}",
    overdue_since: "overdue since {date}",
    no_interval: "no interval set ([drill] every)",
    versus: "{value} (target {target})",
    missed: "MISSED",
    estimate: "estimate",
    target_each: "each drill's target",
    not_recovered: "not recovered (no RTO)",
    no_data: "No data yet.",
    files: "files",
    results: [
        "PASS",
        "TARGET MISSED",
        "CHECK FAILED",
        "INTEGRITY FAILURE",
        "KEY FAILURE",
        "ERROR",
    ],
    short_results: ["PASS", "MISS", "CHECK", "INTEGRITY", "KEY", "ERROR"],
    modes: ["full", "verify-only", "sample"],
    phases: [
        "reach the store, list and verify snapshots",
        "fetch and verify the manifest",
        "download, decrypt, decompress, write, verify",
        "validation command",
        "recovery time (RTO)",
    ],
    log_scale: "logarithmic scale",
    h_audits: "Audit history and 30-day read coverage per store",
    no_audits: "No audit is recorded in the repository (snapdrill audit --record keeps one).",
    c_latest_audit: "latest audit",
    a_audit: "audit",
    a_problems_col: "problems",
    a_clean: "clean",
    a_problems: "problems: {n}",
    a_coverage: "30-day coverage",
    a_unreachable: "unreachable",
};

/// Japanese.
pub(crate) static JA: Labels = Labels {
    title: "snapdrill 復旧訓練報告",
    generated: "{when} に snapdrill {version} で作成。記録された訓練は {n} 件。時刻は {zone} で表示。",
    no_drills: "訓練の記録はまだありません。",
    summary_line: "訓練 {n} 件: 合格 {passed} 件、不合格 {failed} 件。期限超過または完全訓練なしのデータセット・保管先 {overdue} 組。",
    h_summary: "概要: データセット・保管先ごとの最新の完全訓練",
    h_failures: "不合格の訓練とその理由",
    h_rto: "訓練ごとの目標復旧時間 (RTO)",
    h_rpo: "訓練ごとの目標復旧時点 (RPO)",
    h_throughput: "訓練ごとのスループット",
    h_timeline: "保管先・日付ごとの訓練結果",
    h_phases: "最新の訓練: 工程",
    h_all: "全訓練の記録（新しい順）",
    c_data_set: "データセット",
    c_store: "保管先",
    c_verdict: "判定",
    c_last_full: "最新の完全訓練",
    c_result: "訓練結果",
    c_rto: "目標復旧時間 (RTO)",
    c_rpo: "目標復旧時点 (RPO)",
    c_due: "次回完全訓練の期限",
    c_reason: "理由",
    c_when: "日時",
    c_drill: "訓練 ID",
    c_mode: "方式",
    c_operator: "実施者",
    c_host: "ホスト",
    c_data: "データ",
    c_first_byte: "最初のバイトまで",
    c_throughput: "スループット",
    c_phase: "工程",
    c_time: "時間",
    v_ok: "良好",
    v_attention: "要対応",
    v_overdue: "期限超過",
    v_no_full: "完全訓練なし",
    due_on: "期限 {date}",
    overdue_since: "{date} から期限超過",
    no_interval: "間隔未設定 ([drill] every)",
    versus: "{value}（目標 {target}）",
    missed: "未達",
    estimate: "推定",
    target_each: "各訓練の目標",
    not_recovered: "未復旧（RTO なし）",
    no_data: "データはまだありません。",
    files: "ファイル",
    results: [
        "合格",
        "不合格（目標未達）",
        "不合格（検証コマンド失敗）",
        "不合格（完全性エラー）",
        "不合格（鍵エラー）",
        "不合格（実行エラー）",
    ],
    short_results: ["合格", "未達", "検証失敗", "完全性", "鍵", "エラー"],
    modes: ["完全", "検証のみ", "抽出"],
    phases: [
        "保管先への接続、スナップショットの一覧と検証",
        "マニフェストの取得と検証",
        "ダウンロード、復号、展開、書き込み、検証",
        "検証コマンド",
        "復旧時間 (RTO)",
    ],
    log_scale: "対数目盛",
    h_audits: "監査履歴と保管先ごとの 30 日間の読み取り検証率",
    no_audits: "リポジトリに監査記録はありません（snapdrill audit --record で記録）。",
    c_latest_audit: "最新の監査",
    a_audit: "監査 ID",
    a_problems_col: "問題",
    a_clean: "問題なし",
    a_problems: "問題 {n} 件",
    a_coverage: "30 日間の検証率",
    a_unreachable: "接続不可",
};

/// Fill `{name}` placeholders of a template.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}
