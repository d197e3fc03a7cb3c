"""The printed report: one section per scenario that ran, then the machine and the command.

The same figures as the ``--json`` report, which holds every run besides. Each
table is a list of columns (:func:`table`): a header, a width (negative: left
aligned) and a template filled from the row's figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.transforms.read_incremental import COUNT_THREADS

Columns = list[tuple[str, int, str]]


def table(
    columns: Columns, rows: Iterable[dict[str, Any] | str],
    mark: Callable[[dict[str, Any]], str] = lambda row: "",
) -> list[str]:  # fmt: skip
    """The header line, then one line per row (a text row as it is, a failed run's);
    ``mark`` adds a row's verdict after it."""

    def line(cells: Iterable[tuple[str, int]]) -> str:
        return "".join(f"{text:{'<' if width < 0 else '>'}{abs(width)}}" for text, width in cells)

    out = [line((head, width) for head, width, _ in columns)]
    for row in rows:
        if isinstance(row, str):
            out.append(row)
        else:
            out.append(line((fmt.format(**row), width) for _, width, fmt in columns) + mark(row))
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _verdict(row: dict[str, Any], text: str = "NOT AS EXPECTED") -> str:
    return "" if row["ok"] else f"  {text}"


def render_backfill(report: dict[str, Any]) -> list[str]:
    s, per_doc, rows = report["seed"], report["naive_per_document"], report["rows"]
    labels = {
        "floor": "floor (read + convert + 1 load job)",
        "pipeline": f"pipeline ({report['recommended_config']})",
        "naive": f"naive ({rows[2]['rows_per_request']} rows/insertAll request)",
        "naive_per_document": (
            f"naive (1 row/request, EXTRAPOLATED from first {per_doc['extrapolated_from_docs']})"
        ),
    }
    width = max(len(v) for v in labels.values()) + 2
    spread = ", ".join(f"{k} {v}" for k, v in s["per_collection"].items())
    lines = [
        f"benchmark: {report['docs']} documents ({spread}),",
        f"  {s['users']} users x {s['days']} days ({s['window'][0]}..{s['window'][1]}), "
        f"median of {report['repeat']} run(s)",
        "",
        *table([("", -width, "{label}"), ("docs", 8, "{docs}"),
                ("wall s", 10, "{wall_seconds:.2f}"), ("docs/s", 10, "{docs_per_second:.0f}"),
                ("x floor", 9, "{ratio_to_floor:.2f}")],
               [{**r, "label": labels[r["name"]], "docs_per_second": r["docs_per_second"] or 0,
                 "ratio_to_floor": r["ratio_to_floor"] or 0} for r in [*rows, per_doc]]),
    ]  # fmt: skip
    floor, rpd = rows[0], report["reads_per_document"]
    fr, n, t = report["firestore_reads"], report["one_day_full"], report["targets"]
    lines += [
        f"  floor = read {floor['read_seconds']:.2f}s + convert {floor['convert_seconds']:.2f}s "
        f"+ load {floor['load_seconds']:.2f}s (in this process); every pipeline run is a new "
        f"process: python + imports alone {report['python_startup_seconds']:.2f}s",
        f"  naive 1 row/request = naive {rows[2]['rows_per_request']}/request minus "
        f"its insertAll time + {per_doc['docs']} x {per_doc['seconds_per_request'] * 1000:.1f} ms "
        f"(mean request time over the first {per_doc['extrapolated_from_docs']} documents)",
        "pipeline configurations (DirectRunner = FnApiRunner; median wall, median peak RSS):",
        *(f"  {c['config']:<22}{c['wall_seconds']:>8.2f}s  peak RSS "
          f"{c['peak_rss_bytes'] / 2**20:>7.1f} MB"
          + ("" if c["ok"] else "  FAILED: " + "; ".join(c["errors"] or ["see the run logs"]))
          for c in report["pipeline_configs"]),
        f"Firestore reads per document, backfill window: {_fmt(rpd, '.2f')} "
        f"(= {fr['documents_returned']} documents returned / {fr['documents_in_window']} "
        "in the window)",
        f"Firestore reads per document, one-day full run (--date {n['date']}, dry run): "
        f"{n['reads_per_document']} (= {n['documents_returned']} / {n['documents_in_window']} "
        "documents of that day)",
        f"  a full run reads every document of every collection at its snapshot, so one day "
        f"of it costs about the days of history held ({s['days']} here) reads per document; "
        "the nightly is incremental (--scenario nightly)",
        f"peak RSS of the pipeline ({report['recommended_config']}, process tree) at "
        f"{report['docs']} documents: {report['peak_rss_mb']:.1f} MB",
        f"targets: pipeline {t['pipeline_floor_ratio']:.2f}x floor "
        f"(target <= {t['pipeline_within_floor_ratio']}); "
        f"{t['speedup_vs_naive']:.1f}x faster than naive "
        f"({t['speedup_vs_naive_per_document']:.0f}x than 1/request; target >= "
        f"{t['speedup_target']}); backfill reads/doc {_fmt(rpd, '.2f')} "
        f"(target {t['reads_per_document_target']:.2f})",
    ]  # fmt: skip
    return lines


NIGHTLY: Columns = [
    ("history", 8, "{history_days}d"), ("docs", 8, "{documents_seeded}"),
    ("needed", 8, "{documents_needed}"), ("returned", 10, "{documents_returned}"),
    ("reads/needed", 14, "{reads_per_needed:.2f}"), ("(audit)", 9, "{reads_per_needed_audit:.2f}"),
    ("count queries", 15, "{count_queries}"), ("count reads", 13, "{count_reads}"),
    ("rows staged", 13, "{rows_staged}"), ("wall s", 9, "{wall_seconds:.2f}"),
    ("counts s", 10, "{count_replay[seconds]:.2f}"), ("prev reads", 12, "{previous_reads}"),
    ("scan KB", 10, "{kb[bytes]}"), ("drift KB", 10, "{kb[drift]}"),
    ("(unlocated)", 13, "{kb[unlocated]}"),
]  # fmt: skip
DELETES: Columns = [
    ("history", 8, "{history_days}d"), ("deleted", 9, "{deleted}"),
    ("drift days", 12, "{drift_count}"), ("drift rebuild read", 20, "{drift_rebuild_read}"),
    ("expected", 10, "{drift_rebuild_expected}"), ("returned", 10, "{documents_returned}"),
    ("wall s", 9, "{wall_seconds:.2f}"),
]  # fmt: skip


def render_nightly(n: dict[str, Any]) -> list[str]:
    edits = max(1, round(n["per_day"] * n["edit_share"]))
    done = [h for h in n["histories"] if h.get("reads_per_needed") is not None]

    def kb(h: dict[str, Any]) -> dict[str, str]:
        return {k: _fmt(None if h["scan"].get(k) is None else h["scan"][k] / 1024, ".1f")
                for k in ("bytes", "drift", "unlocated")}  # fmt: skip

    lines = [
        f"nightly (incremental) runs: {n['per_day']} documents a day over the five collections; "
        f"after a first nightly (full rebuild, untimed):",
        f"  one new day ({n['per_day']} documents, yesterday) + {edits} older documents edited "
        f"({math.ceil(edits * n['moved_share'])} moved to another day), then the nightly "
        f"(timed); --verify_days {n['verify_days']}; {n['runner']}",
        "",
        *table(NIGHTLY, [
            {**h, "previous_reads": h.get("previous_reads", 0), "kb": kb(h)} if h in done
            else f"{h['history_days']:>7}d  FAILED: {h.get('run', h['first_run'])['error']}"
            for h in n["histories"]
        ], _verdict),
        "  wall time split (the plan's queries replayed after the run, timed: count() with "
        f"{COUNT_THREADS} in flight per table, document queries one after the other):",
    ]  # fmt: skip
    for h in done:
        counts, reads = h["count_replay"], h["read_replay"]
        lines.append(
            f"  {h['history_days']:>5}d: {h['wall_seconds']:.1f}s = {counts['queries']} count() "
            f"{counts['seconds']:.1f}s + {reads['queries']} document queries "
            f"({reads['documents']} documents) {reads['seconds']:.1f}s + the rest (start-up, "
            f"BigQuery, Beam) {h['wall_seconds'] - counts['seconds'] - reads['seconds']:.1f}s"
        )
    lines += [
        "  needed = documents on the window's day + documents changed since the watermark, "
        "each once; returned = the documents_returned of the summary the run reported (audit: "
        "the sum of its _sync_runs entries' documents_returned, read by the benchmark)",
        "  count reads = billed reads of the count() aggregations (1 per 1,000 documents "
        "counted, at least 1 per query); counts s = the spans the plan counts "
        "(IncrementalPlan.count_spans) replayed at the run's snapshot, timed (on the emulator "
        "each scans the collection)",
        "  prev reads = previous versions of changed documents read at the last run's snapshot "
        "(one read each) so that the delete of old rows names days; scan KB = bytes the run's "
        "statements on the five tables would be billed, modelled from column sizes "
        "(pipelines/services/bigquery.py commit_scans and drift_scans; "
        "BigQuery's 10 MB minimum per "
        "table left out), of which drift KB = the drift check's two queries before the read "
        "(rows per verified day; the changed documents' rows on the verified days whose count "
        "leaves room for one and, under the 10 MB floor, their days now); (unlocated) = the "
        "same run had its delete scanned _document_path over the whole table",
    ]
    deleted = [{"history_days": h["history_days"], **h["deletes"]}
               for h in n["histories"] if h.get("deletes")]  # fmt: skip
    if deleted:
        lines += [
            "hard deletes (a separate night with the same yesterday, so only the drift check "
            "reads days):",
            *table(DELETES, [
                {**d, "drift_count": len(d["drift_days"])} if "drift_days" in d
                else f"{d['history_days']:>7}d  FAILED: {d['run']['error']}" for d in deleted
            ], _verdict),
            f"  {deleted[0].get('table', 'user_interactions')}: one document deleted on each of "
            "that many days; drift rebuild read = the documents its drifted days still hold "
            "(expected), returned = the whole run's reads (the change query re-reads the edits "
            "of the clock allowance)",
        ]  # fmt: skip
    if n.get("warmup") and not n["warmup"]["ok"]:
        lines.append("  (the untimed warm-up round failed; see the run logs)")
    t, worst, wall = n["targets"], n["reads_per_document"], n["wall_ratio_longest_to_shortest"]
    windowed, scan = n.get("scan_ratio_within_verify_window"), n["scan_ratio_longest_to_shortest"]
    within = windowed and (f" (longest / {windowed['from_days']}d, the shortest history that "
                           f"holds --verify_days, {windowed['ratio']:.2f}x)")  # fmt: skip
    return [
        *lines,
        f"targets: reads per needed document, worst history {_fmt(worst, '.2f')} (target <= "
        f"{t['reads_per_needed_document']:.2f}: {_met(t['reads_met'])}); nightly wall, longest "
        f"/ shortest history {_fmt(wall, '.2f', 'x')} (target <= "
        f"{t['wall_ratio_longest_to_shortest']}x: {_met(t['wall_met'])})",
        f"targets: statement bytes, longest / shortest history {_fmt(scan, '.2f', 'x')} "
        f"(target <= {t['scan_ratio_longest_to_shortest']}x: "
        f"{_met(t['scan_met'])}){within or ''}; reads with previous versions per needed "
        f"document, worst {_fmt(n['worst_all_reads_per_needed'], '.2f')}",
    ]  # fmt: skip


def _met(met: bool, words: tuple[str, str] = ("met", "NOT met")) -> str:
    return words[0] if met else words[1]


INTRADAY: Columns = [
    ("history", 8, "{history_days}d"), ("docs", 8, "{documents_seeded}"),
    ("runs", 6, "{totals[runs]}"), ("changed/run", 13, "{mm[documents_changed]}"),
    ("reads/changed", 15, "{mm[reads_per_changed]}"),
    ("day: changed", 14, "{totals[documents_changed]}"),
    ("returned", 10, "{totals[documents_returned]}"), ("reads/changed", 15, "{day_ratio:.3f}"),
    ("prev reads", 12, "{totals[previous_reads]}"), ("all/changed", 13, "{all_ratio:.3f}"),
    ("count() q/run", 15, "{mm[count_queries]}"), ("count() reads/run", 19, "{mm[count_reads]}"),
    ("wall s/run", 16, "{mm[wall_seconds]}"), ("start-up s", 14, "{mm[startup_seconds]}"),
    ("start-up share", 16, "{mm[startup_share]}"), ("= rebuild", 11, "{rebuild}"),
]  # fmt: skip
#: How each per-run figure of the intraday table is shown, as median (max).
INTRADAY_FORMATS = {"documents_changed": ".0f", "reads_per_changed": ".3f",
                    "count_queries": ".0f", "count_reads": ".0f", "wall_seconds": ".1f",
                    "startup_seconds": ".1f", "startup_share": ".0%"}  # fmt: skip


def _median_max(stats: dict[str, float | None], spec: str) -> str:
    if stats["median"] is None:
        return "n/a"
    return f"{stats['median']:{spec}} ({stats['max']:{spec}})"


def render_intraday(n: dict[str, Any]) -> list[str]:
    """The intraday table: one row per history, per run as median (max), and the day's totals."""
    done = [h for h in n["histories"] if h.get("runs") and "per_run" in h]

    def shown(h: dict[str, Any]) -> dict[str, Any]:
        mm = {k: _median_max(h["per_run"][k], spec) for k, spec in INTRADAY_FORMATS.items()}
        return {**h, "mm": mm, "day_ratio": h["reads_per_changed"] or 0,
                "all_ratio": h.get("all_reads_per_changed") or 0,
                "rebuild": "yes" if h.get("rebuild", {}).get("equal") else "NO"}  # fmt: skip

    t, worst, every = n["target"], n["reads_per_changed"], n.get("all_reads_per_changed")
    goal = f"{t['reads_per_changed_document']:.2f}"
    return [
        f"intraday runs: after one nightly, {n['hours']} hourly --intraday runs while "
        f"{n['new_per_hour']} new documents and {n['edits_per_hour']} edits an hour trickle in "
        f"(--docs {n['docs']} over each history; --verify_days {n['verify_days']}; {n['runner']})",
        f"  one hour = {n['hour_seconds']:g} s real, the clock allowance scaled with it "
        f"(5 min -> {n['clock_skew_seconds']:g} s); per run: median (max)",
        "",
        *table(INTRADAY, [
            shown(h) if h in done else f"{h['history_days']:>7}d  FAILED: "
            f"{h.get('error') or h['nightly']}" for h in n["histories"]
        ], lambda h: "" if h["ok"] else f"  NOT AS EXPECTED {h.get('error') or ''}".rstrip()),
        "  changed = documents created or edited between the previous run's snapshot and this "
        "one's (each once); reads = documents returned (the run's summary); day: the "
        "totals over all runs, reads/changed = returned / changed",
        "  re-read on top of changed = documents changed within the clock allowance before "
        "the previous snapshot (the change query starts that long before it); each run is "
        "checked to return exactly what the writes say it must (NOT AS EXPECTED otherwise)",
        "  prev reads = previous versions of changed documents read to find their old rows "
        "(one read each, _sync_runs previous_reads); all/changed = (returned + prev reads) / "
        "changed",
        "  count() q = aggregations: the drift check of today and the --verify_days before it "
        "and the change query's count, per table (_sync_runs), + the snapshot estimate's one "
        "per table; count() reads = their billed reads (1 per 1,000 documents counted, at "
        "least 1 per query)",
        "  start-up = launch to the run's first Firestore request (interpreter, imports, "
        "options); share = start-up / wall; = rebuild: every table equals a full rebuild at "
        "the last run's snapshot, row for row",
        f"target: reads per changed document over the day, worst history {_fmt(worst, '.3f')} "
        f"<= {goal}: {_met(t['met'], ('PASS', 'FAIL'))}",
        *([] if every is None else [f"  with previous versions: worst history {every:.3f} <= "
                                    f"{goal}: {_met(t.get('all_met'), ('PASS', 'FAIL'))}"]),
    ]  # fmt: skip


ONBOARDING: Columns = [
    ("chunk", -24, "{first}..{last}"), ("in range", 10, "{documents_in_range}"),
    ("returned", 10, "{documents_returned}"), ("reads/doc", 11, "{reads:.3f}"),
    ("wall s", 9, "{wall_seconds:.1f}"),
]  # fmt: skip


def render_onboarding(n: dict[str, Any]) -> list[str]:
    """The onboarding table: one row per chunk, the backfill's total, the nightly after it."""
    lines = [
        f"onboarding: {n['days']} days x {n['per_day']} documents a day in "
        f"{', '.join(n['collections'])} ({n['documents_seeded']}, up to yesterday); the chunked "
        f"backfill (scripts/backfill.py's chunk commands: --mode incremental, {n['chunk_days']} "
        f"days each, every day but yesterday), {n['edits_between_chunks']} documents edited "
        "between chunks (30% of them moved to another day), then the nightly (no dates)",
        "",
        *table(ONBOARDING, [{**c, "reads": c["reads_per_document"] or 0} for c in n["chunks"]],
               lambda c: _verdict(c, "OVER TARGET")),
    ]  # fmt: skip
    if "error" in n:
        return [*lines, f"FAILED: {n['error']}"]
    b, t, f = n["backfill"], n["nightly"], n["full_first_chunk"]
    columns = [("", -24, "backfill"), *ONBOARDING[1:]]
    total = table(columns, [{**b, "reads": b["reads_per_document"] or 0}])
    both = t["documents_yesterday"] + t["documents_changed"] - t["documents_needed"]
    return [
        *lines,
        total[1],
        f"nightly after it (yesterday {t['yesterday']}): {t['documents_yesterday']} of "
        f"yesterday + {t['documents_changed']} changed ({both} of them on yesterday) = "
        f"{t['documents_needed']} needed (each once); returned {t['documents_returned']}, "
        f"reads/needed {t['reads_per_needed']:.3f}; "
        f"modes {', '.join(t['modes'])}; drift days {t['drift_days'] or 'none'}; "
        f"{t['wall_seconds']:.1f} s" + _verdict(t, "OVER TARGET"),
        f"for comparison, the first chunk with --mode full ({f['first']}..{f['last']}, another "
        f"dataset): returned {f['documents_returned']} for {f['documents_in_range']} in range, "
        f"{f['reads_per_document'] or 0:.2f} reads/doc (a full run reads all "
        f"{f['documents_in_collections']} documents of its collections); {f['wall_seconds']:.1f} s",
        f"equal to a full rebuild at the nightly's snapshot: "
        f"{'yes' if n['equal_to_rebuild'] else 'NO'}",
        "  in range = documents on the chunk's days when it ran; returned = documents "
        "Firestore returned (the run's summary); changed = documents edited between chunks",
        f"targets: each run reads at most {n['targets']['reads_per_document']:.2f}x its "
        f"documents + {n['targets']['slack_per_run']}: {_met(n['ok'])}",
    ]


def render(report: dict[str, Any]) -> str:
    """The whole printed report, for whichever scenarios ran."""
    parts = (("rows", render_backfill), ("nightly", render_nightly),
             ("intraday", render_intraday), ("onboarding", render_onboarding))  # fmt: skip
    # The backfill's report is the top level; the others' parts are under their key.
    sections = [part(report if key == "rows" else report[key]) for key, part in parts
                if key in report]  # fmt: skip
    m = report["machine"]
    lines = [
        "\n\n".join("\n".join(s) for s in sections),
        # The backfill's floor line says it; the onboarding runs are in this process.
        *([] if "rows" in report or "onboarding" in report else [
            "every run is a new process: python + imports alone "
            f"{report['python_startup_seconds']:.2f}s"]),
        f"machine: {m['nproc']} CPUs (nproc), {m['ram_gib']} GiB RAM (MemTotal), "
        f"{m['cpu_model']}, Python {m['python']}",
        f"command (in {report['cwd']}): {report['command']}",
    ]  # fmt: skip
    if report["failed_configs"]:
        failed = ", ".join(report["failed_configs"])
        lines.append(f"FAILED configurations (not recommended): {failed}")
    if not report["valid"]:
        lines.append(
            "INVALID: a reported run did not read and write every document" if "rows" in report
            else f"INVALID: a {report['scenario']} run failed or its tables or reads were not "
            "as expected"
        )  # fmt: skip
    return "\n".join(lines)
