#!/usr/bin/env python3
"""Generate a synthetic "nightly export" of a Japanese/English call center.

The output folder looks like what a small CRM / telephony system might drop
into a backup directory every night:

    customers.csv          ~45%  customer master (Japanese + English customers)
    call_logs.jsonl        ~35%  one JSON object per call for the business date
    db/crm.sql             ~15%  pg_dump-style SQL dump (CREATE TABLE + INSERTs)
    db/EMPTY_TABLES              empty file (0 bytes), an edge case on purpose
    db/VERSION                   exactly one byte: "7" (no newline)
    reports/agent-<id>.txt  ~5%  per-agent daily report, 6 agents

ALL PERSONAL DATA IS SYNTHETIC.  Names are drawn from common-name pools,
English phone numbers use the reserved fictional ranges (US 555-01xx,
UK Ofcom drama numbers, AU 5550 / 7010 ranges), Japanese phone numbers are
random digits, and every e-mail address is at example.com / example.jp.

The output is a pure function of the arguments: every timestamp derives from
--date (never from the clock) and all randomness comes from
random.Random(--seed), so the same arguments give byte-for-byte identical
files.  Files are streamed to disk in batches, so memory use stays small at
any --size.  Existing files of the same names in --out are overwritten; other
files in --out are left alone.  Below roughly 13 KB the fixed headers
dominate and the output does not shrink further.

Usage:
    scripts/gen-exports.py [--out DIR] [--size SIZE] [--seed N] [--date YYYY-MM-DD]

    --out   output folder                  (default: fixtures/exports)
    --size  approximate total size, e.g. 1MB, 300MB, 2GiB, 64KiB, 123456
            (KB/MB/GB = powers of 1000, KiB/MiB/GiB = powers of 1024;
             default: 1MB)
    --seed  random seed                    (default: 42)
    --date  business date of the export    (default: 2026-11-27)
"""

import argparse
import csv
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta

# --------------------------------------------------------------------------
# Pools (all synthetic / generic)
# --------------------------------------------------------------------------

JP_SURNAMES = [
    ("佐藤", "サトウ", "sato"), ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"), ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"), ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"), ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"), ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"), ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"), ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"), ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"), ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"), ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"), ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"), ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"), ("石川", "イシカワ", "ishikawa"),
    ("前田", "マエダ", "maeda"), ("藤田", "フジタ", "fujita"),
    ("小川", "オガワ", "ogawa"), ("岡田", "オカダ", "okada"),
    ("後藤", "ゴトウ", "goto"), ("長谷川", "ハセガワ", "hasegawa"),
    ("村上", "ムラカミ", "murakami"), ("近藤", "コンドウ", "kondo"),
    ("石井", "イシイ", "ishii"), ("遠藤", "エンドウ", "endo"),
    ("青木", "アオキ", "aoki"), ("坂本", "サカモト", "sakamoto"),
    ("西村", "ニシムラ", "nishimura"), ("福田", "フクダ", "fukuda"),
]

JP_GIVEN = [
    ("健", "ケン", "ken"), ("翔太", "ショウタ", "shota"),
    ("大輔", "ダイスケ", "daisuke"), ("拓也", "タクヤ", "takuya"),
    ("直樹", "ナオキ", "naoki"), ("誠", "マコト", "makoto"),
    ("蓮", "レン", "ren"), ("悠真", "ユウマ", "yuma"),
    ("陽翔", "ハルト", "haruto"), ("浩二", "コウジ", "koji"),
    ("隆", "タカシ", "takashi"), ("剛", "ツヨシ", "tsuyoshi"),
    ("和也", "カズヤ", "kazuya"), ("亮", "リョウ", "ryo"),
    ("修", "オサム", "osamu"), ("美咲", "ミサキ", "misaki"),
    ("陽菜", "ヒナ", "hina"), ("結衣", "ユイ", "yui"),
    ("さくら", "サクラ", "sakura"), ("愛", "アイ", "ai"),
    ("由美", "ユミ", "yumi"), ("恵子", "ケイコ", "keiko"),
    ("真由美", "マユミ", "mayumi"), ("裕子", "ユウコ", "yuko"),
    ("明美", "アケミ", "akemi"), ("葵", "アオイ", "aoi"),
    ("凛", "リン", "rin"), ("彩", "アヤ", "aya"),
    ("千尋", "チヒロ", "chihiro"), ("智子", "トモコ", "tomoko"),
    ("京子", "キョウコ", "kyoko"), ("奈々", "ナナ", "nana"),
    ("舞", "マイ", "mai"), ("花子", "ハナコ", "hanako"),
]

# (prefecture, city/ward, town, postal code, landline area code)
JP_AREAS = [
    ("東京都", "新宿区", "西新宿", "160-0023", "03"),
    ("東京都", "渋谷区", "道玄坂", "150-0043", "03"),
    ("東京都", "千代田区", "丸の内", "100-0005", "03"),
    ("東京都", "港区", "芝公園", "105-0011", "03"),
    ("東京都", "世田谷区", "三軒茶屋", "154-0024", "03"),
    ("東京都", "品川区", "大崎", "141-0032", "03"),
    ("東京都", "目黒区", "自由が丘", "152-0035", "03"),
    ("東京都", "豊島区", "東池袋", "170-0013", "03"),
    ("神奈川県", "横浜市西区", "みなとみらい", "220-0012", "045"),
    ("神奈川県", "川崎市中原区", "小杉町", "211-0063", "044"),
    ("大阪府", "大阪市北区", "梅田", "530-0001", "06"),
    ("大阪府", "大阪市中央区", "難波", "542-0076", "06"),
    ("愛知県", "名古屋市中村区", "名駅", "450-0002", "052"),
    ("福岡県", "福岡市博多区", "博多駅前", "812-0011", "092"),
    ("北海道", "札幌市中央区", "北五条西", "060-0005", "011"),
    ("宮城県", "仙台市青葉区", "中央", "980-0021", "022"),
    ("兵庫県", "神戸市中央区", "三宮町", "650-0021", "078"),
    ("広島県", "広島市中区", "紙屋町", "730-0031", "082"),
    ("埼玉県", "さいたま市大宮区", "桜木町", "330-0854", "048"),
    ("千葉県", "千葉市中央区", "富士見", "260-0015", "043"),
]

JP_BUILDINGS = ["パークハイツ", "グランドメゾン", "コーポ", "サンライズマンション",
                "レジデンス", "ハイム", "メゾン・ド・", "ヴィラ"]

EN_FIRST = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael",
    "Linda", "William", "Elizabeth", "David", "Barbara", "Richard", "Susan",
    "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel",
    "Emily", "Matthew", "Olivia", "Anthony", "Sophie", "Mark", "Chloe",
    "Liam", "Charlotte", "Noah", "Amelia", "Oliver", "Grace", "Jack", "Isla",
    "Harry", "Zoe", "Ethan", "Mia",
]

EN_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall",
    "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
    "Hill", "O'Brien", "O'Connor", "MacDonald", "Smith-Jones", "Evans",
    "Roberts", "Campbell", "Murphy", "Kelly", "Nguyen",
]

# (city, country, style, streets)
EN_CITIES = [
    ("Seattle", "US", "us206", ["Pine St", "Pike St", "1st Ave", "2nd Ave",
                                "Madison St", "Union St", "Broadway E",
                                "Westlake Ave N"]),
    ("Portland", "US", "us503", ["NW 23rd Ave", "SE Hawthorne Blvd",
                                 "Burnside St", "SW Morrison St",
                                 "N Williams Ave"]),
    ("San Francisco", "US", "us415", ["Market St", "Valencia St",
                                      "Geary Blvd", "Mission St",
                                      "Columbus Ave"]),
    ("London", "GB", "ldn", ["Baker Street", "Fleet Street", "Whitehall",
                             "Camden High Street", "Kings Road",
                             "Old Kent Road", "Portobello Road"]),
    ("Manchester", "GB", "man", ["Deansgate", "Oxford Road", "Market Street",
                                 "Canal Street", "Wilmslow Road"]),
    ("Sydney", "AU", "syd", ["George St", "Pitt St", "Oxford St",
                             "King St", "Crown St"]),
    ("Melbourne", "AU", "mel", ["Collins St", "Flinders Lane",
                                "Swanston St", "Brunswick St",
                                "Lygon St"]),
]

UK_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
LDN_DISTRICTS = ["NW1", "SW1A", "W1U", "EC4A", "SE1", "N1", "E2", "WC2H"]

SEGMENTS = (["retail"] * 60 + ["smb"] * 20 + ["enterprise"] * 8 +
            ["vip"] * 5 + ["churn_risk"] * 7)

AGENTS = [
    ("A101", "佐藤 美咲", "ja", "Tokyo / Shinjuku"),
    ("A102", "田中 翔太", "ja", "Tokyo / Shinjuku"),
    ("A103", "鈴木 由美", "ja", "Osaka / Umeda"),
    ("A104", "Emily Carter", "en", "Tokyo / Shinjuku"),
    ("A105", "Daniel Brooks", "en", "Osaka / Umeda"),
    ("A106", "中村 ケイト (Kate Nakamura)", "ja+en", "Tokyo / Shinjuku"),
]
JA_AGENTS = [0, 1, 2, 0, 1, 2, 5]
EN_AGENTS = [3, 4, 3, 4, 5]

QUEUES_JA = (["general-ja"] * 5 + ["billing-ja"] * 3 + ["tech-ja"] * 3 +
             ["cancel-ja"])
QUEUES_EN = (["general-en"] * 5 + ["billing-en"] * 3 + ["tech-en"] * 3 +
             ["cancel-en"])

OUTCOMES = (["resolved"] * 55 + ["transferred"] * 10 + ["escalated"] * 8 +
            ["callback_scheduled"] * 10 + ["voicemail"] * 5 +
            ["abandoned"] * 7 + ["refund_issued"] * 5)
OUTCOME_ORDER = ["resolved", "transferred", "escalated", "callback_scheduled",
                 "voicemail", "abandoned", "refund_issued"]
CSAT_POOL = [1] * 5 + [2] * 7 + [3] * 15 + [4] * 35 + [5] * 38

NOTES_JA = [
    "請求金額について問い合わせ。明細を再送付済み。",
    "配送状況の確認。注文番号{o}は明日到着予定と案内。",
    "パスワード再設定の手順を案内し、ログインを確認。",
    "解約希望。引き止めオファーを提示したが、検討するとのこと。",
    "住所変更の手続きを完了。",
    "アプリが起動しないとの申告。再インストールで解決。",
    "支払方法をクレジットカードから口座振替へ変更。",
    "二重引き落としの可能性あり。経理部へエスカレーション。",
    "折り返し電話を希望（{h}時以降）。",
    "製品の使い方について質問。マニュアルのURLを案内。",
    "「前回の説明が分かりにくい」とのご意見。お詫びして再説明。",
    "ポイント残高の照会。{p}ポイントと回答。",
    "プラン変更（ライト→スタンダード）を受付。",
    "領収書の宛名変更を依頼され、再発行を手配。",
    "ログイン時に二段階認証のコードが届かない。SMS設定を確認。",
]
NOTES_EN = [
    "Asked about invoice #{o}; resent a copy by email.",
    "Delivery status check, order {o} arriving tomorrow.",
    "Walked customer through password reset; login confirmed.",
    "Wants to cancel. Offered 2 months at 50% off, will think about it.",
    "Updated billing address.",
    "App crashes on launch; reinstall fixed it.",
    "Possible double charge, escalated to billing team.",
    "Requested a callback after {h}pm.",
    "Customer said \"the last agent was really helpful\".",
    "Changed plan from Basic to Plus, effective next cycle.",
    "Loyalty points balance: {p} pts.",
    "Complaint about hold time (over 10 min). Apologised, logged feedback.",
    "Asked how to export data to CSV; sent help-center link.",
    "2FA code not arriving by SMS; verified phone number on file.",
    "Wanted a receipt re-issued to the company name; done.",
]
NOTES_VOICEMAIL = {0: "留守番電話にメッセージを残した。", 1: "Left voicemail."}
NOTES_ABANDONED = {0: "通話途中で切断。", 1: "Caller hung up while on hold."}
NOTES_NO_ANSWER = {0: "応答なし。後日再架電予定。", 1: "No answer; will retry tomorrow."}

CSV_HEADER = ["customer_id", "name", "name_kana", "email", "phone",
              "postal_code", "address", "city", "country", "created_at",
              "segment"]
CALL_COLS = ["call_id", "customer_id", "agent_id", "started_at", "duration_s",
             "direction", "queue", "outcome", "csat", "notes"]

DAY_START_H = 8          # calls are spread over 08:00:00 .. 21:59:59 JST
DAY_SPAN_S = 14 * 3600
CAP = 4096               # max rows generated per batch


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def parse_size(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size: {text!r}")
    num, unit = float(m.group(1)), m.group(2).lower()
    if unit in ("", "b"):
        mult = 1
    else:
        power = "kmgt".index(unit[0]) + 1
        mult = (1024 if "i" in unit else 1000) ** power
    n = int(num * mult)
    if n < 1:
        raise argparse.ArgumentTypeError("size must be at least 1 byte")
    return n


def parse_date(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date (want YYYY-MM-DD): {text!r}")


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def batch_rows(remaining, est):
    """How many rows to generate next so that we land just past the budget."""
    return max(1, min(CAP, int(remaining / est)))


class Budget:
    """Byte budget for one output stream with a running bytes/row estimate."""

    def __init__(self, limit, est):
        self.limit = limit
        self.written = 0
        self.rows = 0
        self.est = est

    @property
    def open(self):
        return self.written < self.limit

    def want(self):
        n = batch_rows(self.limit - self.written, self.est)
        return n if self.rows else min(n, 64)   # calibrate on a small batch

    def add(self, nbytes, nrows):
        self.written += nbytes
        self.rows += nrows
        if self.rows:
            self.est = max(1.0, self.written / self.rows)


# --------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------

class Generator:
    def __init__(self, out, size, seed, bdate):
        self.out = out
        self.size = size
        self.rng = random.Random(seed)
        self.bdate = bdate
        self.dstr = bdate.isoformat()
        self.dcompact = bdate.strftime("%Y%m%d")
        self.dump_time = datetime(bdate.year, bdate.month, bdate.day, 2, 0, 0) \
            + timedelta(days=1)
        # precomputed pool of customer creation dates: up to ~8 years back
        self.created_days = [(bdate - timedelta(days=d)).isoformat()
                             for d in range(1, 8 * 365)]
        self.n_customers = 0
        self.cust_lang = bytearray()   # 0 = Japanese, 1 = English
        self.bytes_total = 0
        self.files = 0

    # ---- budgets ---------------------------------------------------------

    def plan(self, sql_fixed, report_heads):
        """Split the target size into per-stream byte budgets.

        Fixed overhead (SQL header/footer, report headers) that does not fit
        in its own share is taken from the CSV and JSONL shares, so the total
        stays close to the target down to a floor of roughly 13 KB."""
        t = max(0, self.size - 1)   # db/VERSION is 1 byte
        csv_b, jsonl_b = t * 0.45, t * 0.35
        sql_data = t * 0.15 - sql_fixed
        per_report = t * 0.05 / len(AGENTS)
        details = [per_report - h for h in report_heads]
        deficit = -min(0.0, sql_data) - sum(min(0.0, d) for d in details)
        csv_b = max(0.0, csv_b - deficit * 0.45 / 0.80)
        jsonl_b = max(0.0, jsonl_b - deficit * 0.35 / 0.80)
        sql_data = max(0, int(sql_data))
        self.b_csv = Budget(int(csv_b), 150.0)
        self.b_jsonl = Budget(int(jsonl_b), 300.0)
        self.b_sql_cust = Budget(int(sql_data * 0.55), 200.0)
        self.b_sql_call = Budget(sql_data - int(sql_data * 0.55), 250.0)
        self.detail_budget = [max(0, int(d)) for d in details]

    # ---- customers -------------------------------------------------------

    def make_customers(self, first_id, n):
        """Return (csv_rows, sql_tuples_fn) for customers first_id..+n-1."""
        rng = self.rng
        rnd = rng.random
        ri = rng.randrange
        created = self.created_days
        n_created = len(created)
        rows = []
        langs = self.cust_lang
        for cid in range(first_id, first_id + n):
            c_id = f"C{cid:07d}"
            ts = f"{created[int(rnd() * n_created)]}T{ri(24):02d}:{ri(60):02d}:{ri(60):02d}+09:00"
            seg = SEGMENTS[int(rnd() * 100)]
            if rnd() < 0.65:
                langs.append(0)
                sur = JP_SURNAMES[int(rnd() * len(JP_SURNAMES))]
                giv = JP_GIVEN[int(rnd() * len(JP_GIVEN))]
                pref, city, town, postal, area = JP_AREAS[int(rnd() * len(JP_AREAS))]
                addr = f"{pref}{city}{town}{ri(1, 6)}-{ri(1, 30)}-{ri(1, 25)}"
                r = rnd()
                if r < 0.35:
                    bld = JP_BUILDINGS[int(rnd() * len(JP_BUILDINGS))]
                    sep = "　" if r < 0.1 else " "
                    addr = f"{addr}{sep}{bld}{town} {ri(1, 15)}{ri(1, 12):02d}号室"
                if rnd() < 0.55:
                    phone = f"0{ri(7, 10)}0-{ri(10000):04d}-{ri(10000):04d}"
                elif len(area) == 2:
                    phone = f"{area}-{ri(10000):04d}-{ri(10000):04d}"
                else:
                    phone = f"{area}-{ri(1000):03d}-{ri(10000):04d}"
                email = f"{giv[2]}.{sur[2]}.{cid}@example.jp"
                rows.append((c_id, f"{sur[0]} {giv[0]}", f"{sur[1]} {giv[1]}",
                             email, phone, postal, addr, city, "JP", ts, seg))
            else:
                langs.append(1)
                first = EN_FIRST[int(rnd() * len(EN_FIRST))]
                last = EN_LAST[int(rnd() * len(EN_LAST))]
                city, country, style, streets = EN_CITIES[int(rnd() * len(EN_CITIES))]
                street = f"{ri(1, 2400)} {streets[int(rnd() * len(streets))]}"
                r = rnd()
                if style.startswith("us"):
                    addr = f"{street}, Apt {ri(1, 40)}{'ABCD'[ri(4)]}" if r < 0.4 else street
                    postal = {"us206": "981", "us503": "972", "us415": "941"}[style] + f"{ri(1, 100):02d}"
                    phone = f"+1 {style[2:]} 555 01{ri(100):02d}"
                elif style in ("ldn", "man"):
                    addr = f"Flat {ri(1, 30)}, {street}" if r < 0.4 else street
                    letters = UK_LETTERS[ri(20)] + UK_LETTERS[ri(20)]
                    if style == "ldn":
                        postal = f"{LDN_DISTRICTS[ri(len(LDN_DISTRICTS))]} {ri(1, 10)}{letters}"
                        phone = f"+44 20 7946 0{ri(1000):03d}"
                    else:
                        postal = f"M{ri(1, 21)} {ri(1, 10)}{letters}"
                        phone = f"+44 161 496 0{ri(1000):03d}"
                else:
                    addr = f"Unit {ri(1, 60)}, {street}" if r < 0.4 else street
                    if style == "syd":
                        postal = f"2{ri(100):03d}"
                        phone = f"+61 2 5550 {ri(10000):04d}"
                    else:
                        postal = f"3{ri(100):03d}"
                        phone = f"+61 3 7010 {ri(10000):04d}"
                email = (f"{first}.{last}.{cid}@example.com".lower()
                         .replace("'", ""))
                rows.append((c_id, f"{first} {last}", "", email, phone, postal,
                             addr, city, country, ts, seg))
        return rows

    @staticmethod
    def sql_customer(row):
        return "(" + ", ".join(sql_str(v) for v in row[:9]) + \
            f", {sql_str(row[9])}, {sql_str(row[10])})"

    # ---- calls -----------------------------------------------------------

    def make_calls(self, first_id, n, frac0, dfrac, state):
        rng = self.rng
        rnd = rng.random
        ri = rng.randrange
        lognorm = rng.lognormvariate
        ncust = self.n_customers
        langs = self.cust_lang
        dstr = self.dstr
        dcompact = self.dcompact
        calls = []
        t_prev = state["t"]
        for i in range(n):
            idx = first_id + i
            t = int((frac0 + i * dfrac) * DAY_SPAN_S)
            t = min(DAY_SPAN_S - 1, max(t_prev, t + ri(-20, 21)))
            t_prev = t
            cust = ri(ncust) + 1
            lang = langs[cust - 1]
            if lang == 0:
                agent = JA_AGENTS[int(rnd() * len(JA_AGENTS))]
                queue = QUEUES_JA[int(rnd() * len(QUEUES_JA))]
                notes_pool = NOTES_JA
            else:
                agent = EN_AGENTS[int(rnd() * len(EN_AGENTS))]
                queue = QUEUES_EN[int(rnd() * len(QUEUES_EN))]
                notes_pool = NOTES_EN
            inbound = rnd() < 0.8
            if not inbound:
                queue = "outbound-ja" if lang == 0 else "outbound-en"
            outcome = OUTCOMES[int(rnd() * 100)]
            if outcome == "abandoned":
                dur = ri(5, 90)
                csat = None
                note = NOTES_ABANDONED[lang] if inbound else NOTES_NO_ANSWER[lang]
            elif outcome == "voicemail":
                dur = ri(20, 61)
                csat = None
                note = NOTES_VOICEMAIL[lang]
            else:
                dur = min(3600, max(30, int(lognorm(5.5, 0.6))))
                csat = CSAT_POOL[int(rnd() * 100)] if rnd() < 0.55 else None
                note = notes_pool[int(rnd() * len(notes_pool))]
                if "{" in note:
                    note = note.format(o=ri(100000, 1000000), h=ri(13, 19) if lang == 0 else ri(1, 7),
                                       p=ri(0, 20000))
            h, rem = divmod(t, 3600)
            m, s = divmod(rem, 60)
            hhmmss = f"{h + DAY_START_H:02d}:{m:02d}:{s:02d}"
            calls.append((f"CL{dcompact}-{idx:07d}", f"C{cust:07d}", agent,
                          f"{dstr}T{hhmmss}+09:00", dur,
                          "inbound" if inbound else "outbound", queue, outcome,
                          csat, note, h, hhmmss))
        state["t"] = t_prev
        return calls

    # ---- reports ---------------------------------------------------------

    def render_report_head(self, ai, st, shown):
        aid, name, lang, site = AGENTS[ai]
        weekday = self.bdate.strftime("%a")
        gen = self.dump_time.strftime("%Y-%m-%dT%H:%M:%S+09:00")
        n = st["calls"]
        aht = st["dur"] / n if n else None
        csat = st["csat_sum"] / st["csat_n"] if st["csat_n"] else None

        def f_aht(v):
            if v is None:
                return f"{'-':>8} {'':7}"
            v = int(round(v))
            return f"{v // 3600:02d}:{v % 3600 // 60:02d}:{v % 60:02d} ({v:>4} s)"

        def f_csat(v):
            return f"{'-':>4}" if v is None else f"{v:4.2f}"

        lines = [
            "SNAPDRILL DEMO CONTACT CENTER - AGENT DAILY REPORT",
            "=" * 50,
            f"Business date : {self.dstr} ({weekday})",
            f"Agent         : {aid}  {name}",
            f"Languages     : {lang}",
            f"Site          : {site}",
            f"Generated     : {gen}",
            "",
            "Summary",
            "-------",
            f"Calls handled        : {n:>9,}",
            f"  inbound            : {st['in']:>9,}",
            f"  outbound           : {n - st['in']:>9,}",
            f"Talk time (total s)  : {st['dur']:>9,}",
            f"Average handle time  : {f_aht(aht)}",
            f"CSAT average         : {f_csat(csat)} (n={st['csat_n']:>7,})",
            "",
            "Hourly breakdown",
            "+-------+-------+--------+------+",
            "| Hour  | Calls | AHT(s) | CSAT |",
            "+-------+-------+--------+------+",
        ]
        for h in range(DAY_SPAN_S // 3600):
            hc, hd, hs, hn = st["hours"][h]
            h_aht = f"{hd / hc:>6.0f}" if hc else f"{'-':>6}"
            h_csat = f_csat(hs / hn if hn else None)
            lines.append(f"| {h + DAY_START_H:02d}:00 | {hc:>5} | {h_aht} | {h_csat} |")
        lines.append("+-------+-------+--------+------+")
        lines += ["", "Outcomes",
                  f"  {'outcome':<20} {'count':>7} {'share':>7}"]
        for oc in OUTCOME_ORDER:
            c = st["outcomes"][oc]
            share = f"{100.0 * c / n:6.1f}%" if n else f"{'-':>6} "
            lines.append(f"  {oc:<20} {c:>7,} {share}")
        lines += ["",
                  f"Call detail (first {shown:>7,} of {n:>7,} calls)",
                  f" {'time':<8}  {'call_id':<19} {'customer':<8} {'dir':<3} "
                  f"{'queue':<11} {'dur_s':>6} {'outcome':<18} {'csat':>4}",
                  " " + "-" * 84,
                  ""]
        return "\n".join(lines)

    @staticmethod
    def new_stats():
        return {"calls": 0, "in": 0, "dur": 0, "csat_sum": 0, "csat_n": 0,
                "hours": [[0, 0, 0, 0] for _ in range(DAY_SPAN_S // 3600)],
                "outcomes": {oc: 0 for oc in OUTCOME_ORDER}}

    # ---- SQL -------------------------------------------------------------

    def sql_header(self):
        started = self.dump_time.strftime("%Y-%m-%d %H:%M:%S JST")
        return f"""--
-- PostgreSQL database dump
--

-- Dumped from database version 16.4 (Debian 16.4-1.pgdg120+1)
-- Dumped by pg_dump version 16.4 (Debian 16.4-1.pgdg120+1)
-- Started on {started}
-- Business date {self.dstr}; all personal data in this dump is synthetic.

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: crm
--

CREATE TABLE public.customers (
    customer_id text NOT NULL,
    name text NOT NULL,
    name_kana text,
    email text NOT NULL,
    phone text,
    postal_code text,
    address text,
    city text,
    country character(2) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    segment text NOT NULL
);


ALTER TABLE public.customers OWNER TO crm;

--
-- Name: calls; Type: TABLE; Schema: public; Owner: crm
--

CREATE TABLE public.calls (
    call_id text NOT NULL,
    customer_id text NOT NULL,
    agent_id text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_s integer NOT NULL,
    direction text NOT NULL,
    queue text NOT NULL,
    outcome text NOT NULL,
    csat smallint,
    notes text,
    CONSTRAINT calls_csat_check CHECK (((csat >= 1) AND (csat <= 5)))
);


ALTER TABLE public.calls OWNER TO crm;

--
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: crm
--

"""

    SQL_MID = """

--
-- Data for Name: calls; Type: TABLE DATA; Schema: public; Owner: crm
--

"""

    SQL_FOOTER = """

--
-- Name: calls calls_pkey; Type: CONSTRAINT; Schema: public; Owner: crm
--

ALTER TABLE ONLY public.calls
    ADD CONSTRAINT calls_pkey PRIMARY KEY (call_id);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: crm
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (customer_id);


--
-- Name: calls_started_at_idx; Type: INDEX; Schema: public; Owner: crm
--

CREATE INDEX calls_started_at_idx ON public.calls USING btree (started_at);


--
-- PostgreSQL database dump complete
--

"""

    SQL_INS_CUST = ("INSERT INTO public.customers (" + ", ".join(CSV_HEADER) +
                    ") VALUES\n\t")
    SQL_INS_CALL = ("INSERT INTO public.calls (" + ", ".join(CALL_COLS) +
                    ") VALUES\n\t")
    ROWS_PER_INSERT = 100

    @classmethod
    def sql_rows(cls, insert, start_idx, tuples):
        """Lines for rows start_idx.. with pg_dump --rows-per-insert framing.

        Each row carries its own prefix: a new INSERT (closing the previous
        one) every ROWS_PER_INSERT rows, otherwise ",\\n\\t".  The final ";"
        is written by the caller."""
        out = []
        rpi = cls.ROWS_PER_INSERT
        for k, tup in enumerate(tuples):
            i = start_idx + k
            if i % rpi == 0:
                out.append((";\n\n" if i else "") + insert + tup)
            else:
                out.append(",\n\t" + tup)
        return out

    # ---- main ------------------------------------------------------------

    def write(self, path, data):
        with open(path, "wb") as f:
            f.write(data)
        self.bytes_total += len(data)
        self.files += 1

    def run(self):
        out = self.out
        os.makedirs(os.path.join(out, "db"), exist_ok=True)
        os.makedirs(os.path.join(out, "reports"), exist_ok=True)

        sql_head = self.sql_header().encode()
        sql_fixed = len(sql_head) + len(self.SQL_MID) + len(self.SQL_FOOTER) + 4
        heads_empty = [len(self.render_report_head(i, self.new_stats(), 0).encode())
                       for i in range(len(AGENTS))]
        self.plan(sql_fixed, heads_empty)

        f_csv = open(os.path.join(out, "customers.csv"), "wb")
        f_sql = open(os.path.join(out, "db", "crm.sql"), "wb")
        f_sql.write(sql_head)
        sql_bytes = len(sql_head)

        # ---- phase 1: customers (CSV + SQL) ----
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        head = buf.getvalue().encode()
        f_csv.write(head)
        csv_bytes = len(head)
        bc, bs = self.b_csv, self.b_sql_cust
        # The header counts against the CSV budget but not the row estimate.
        bc.limit -= len(head)
        next_id = 1
        while bc.open or next_id == 1:
            n = bc.want()
            if bs.open:
                n = min(n, bs.want())
            rows = self.make_customers(next_id, n)
            buf.seek(0)
            buf.truncate()
            writer.writerows(rows)
            data = buf.getvalue().encode()
            f_csv.write(data)
            csv_bytes += len(data)
            bc.add(len(data), n)
            if bs.open:
                lines = self.sql_rows(self.SQL_INS_CUST, bs.rows,
                                      [self.sql_customer(r) for r in rows])
                data = "".join(lines).encode()
                f_sql.write(data)
                bs.add(len(data), n)
            next_id += n
        self.n_customers = next_id - 1
        f_csv.close()
        self.bytes_total += csv_bytes
        self.files += 1
        tail = ((";\n" if bs.rows else "") + self.SQL_MID).encode()
        f_sql.write(tail)
        sql_bytes += bs.written + len(tail)

        # ---- phase 2: calls (JSONL + SQL + report detail) ----
        f_jsonl = open(os.path.join(out, "call_logs.jsonl"), "wb")
        enc = json.JSONEncoder(ensure_ascii=False).encode
        bj, bq = self.b_jsonl, self.b_sql_call
        stats = [self.new_stats() for _ in AGENTS]
        detail_budget = self.detail_budget
        detail_bytes = [0] * len(AGENTS)
        detail_rows = [0] * len(AGENTS)
        detail_tmp = [tempfile.TemporaryFile() for _ in AGENTS]
        state = {"t": 0}
        next_id = 1
        while bj.open or next_id == 1:
            n = bj.want()
            if bq.open:
                n = min(n, bq.want())
            frac0 = bj.written / bj.limit if bj.limit else 0.0
            dfrac = bj.est / bj.limit if bj.limit else 0.0
            calls = self.make_calls(next_id, n, frac0, dfrac, state)
            jl = []
            dl = [[] for _ in AGENTS]
            for c in calls:
                (call_id, cust, agent, started, dur, direction, queue, outcome,
                 csat, note, h, hhmmss) = c
                aid = AGENTS[agent][0]
                jl.append(enc({"call_id": call_id, "customer_id": cust,
                               "agent_id": aid, "started_at": started,
                               "duration_s": dur, "direction": direction,
                               "queue": queue, "outcome": outcome,
                               "csat": csat, "notes": note}))
                st = stats[agent]
                st["calls"] += 1
                st["dur"] += dur
                hs = st["hours"][h]
                hs[0] += 1
                hs[1] += dur
                if direction == "inbound":
                    st["in"] += 1
                if csat is not None:
                    st["csat_sum"] += csat
                    st["csat_n"] += 1
                    hs[2] += csat
                    hs[3] += 1
                st["outcomes"][outcome] += 1
                if detail_bytes[agent] < detail_budget[agent]:
                    line = (f" {hhmmss:<8}  {call_id:<19} {cust:<8} "
                            f"{'in' if direction == 'inbound' else 'out':<3} "
                            f"{queue:<11} {dur:>6} {outcome:<18} "
                            f"{'-' if csat is None else csat:>4}\n")
                    dl[agent].append(line)
                    detail_bytes[agent] += len(line)
                    detail_rows[agent] += 1
            jl.append("")
            data = "\n".join(jl).encode()
            f_jsonl.write(data)
            bj.add(len(data), n)
            for a, lines in enumerate(dl):
                if lines:
                    detail_tmp[a].write("".join(lines).encode())
            if bq.open:
                tuples = []
                for c in calls:
                    csat = c[8]
                    tuples.append(
                        f"({sql_str(c[0])}, {sql_str(c[1])}, "
                        f"{sql_str(AGENTS[c[2]][0])}, {sql_str(c[3])}, {c[4]}, "
                        f"{sql_str(c[5])}, {sql_str(c[6])}, {sql_str(c[7])}, "
                        f"{'NULL' if csat is None else csat}, {sql_str(c[9])})")
                data = "".join(self.sql_rows(self.SQL_INS_CALL, bq.rows,
                                             tuples)).encode()
                f_sql.write(data)
                bq.add(len(data), n)
            next_id += n
        f_jsonl.close()
        self.bytes_total += bj.written
        self.files += 1
        tail = ((";\n" if bq.rows else "") + self.SQL_FOOTER).encode()
        f_sql.write(tail)
        sql_bytes += bq.written + len(tail)
        f_sql.close()
        self.bytes_total += sql_bytes
        self.files += 1

        # ---- phase 3: reports ----
        for a, (aid, *_rest) in enumerate(AGENTS):
            path = os.path.join(out, "reports", f"agent-{aid}.txt")
            headtxt = self.render_report_head(a, stats[a], detail_rows[a]).encode()
            tmp = detail_tmp[a]
            tmp.seek(0)
            with open(path, "wb") as f:
                f.write(headtxt)
                shutil.copyfileobj(tmp, f, 1 << 20)
            tmp.close()
            self.bytes_total += len(headtxt) + detail_bytes[a]
            self.files += 1

        # ---- edge-case files ----
        self.write(os.path.join(out, "db", "EMPTY_TABLES"), b"")
        self.write(os.path.join(out, "db", "VERSION"), b"7")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Generate a synthetic JA/EN call-center nightly export.")
    ap.add_argument("--out", default="fixtures/exports",
                    help="output folder (default: fixtures/exports)")
    ap.add_argument("--size", type=parse_size, default=parse_size("1MB"),
                    help="approximate total size, e.g. 1MB, 300MB, 2GiB "
                         "(default: 1MB)")
    ap.add_argument("--seed", type=int, default=42,
                    help="random seed (default: 42)")
    ap.add_argument("--date", type=parse_date, default=date(2026, 11, 27),
                    help="business date YYYY-MM-DD (default: 2026-11-27)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    gen = Generator(args.out, args.size, args.seed, args.date)
    gen.run()
    dt = time.monotonic() - t0
    print(f"gen-exports: wrote {gen.files} files, {gen.bytes_total:,} bytes "
          f"(target {args.size:,}) to {args.out} in {dt:.2f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
