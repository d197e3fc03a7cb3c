"""The printed report: the backfill table, the nightly table, the machine and the command.

The same figures as the ``--json`` report, which holds every run besides.
"""

from __future__ import annotations

import math
from typing import Any

from pipelines.transforms.read_incremental import COUNT_THREADS


def _machine_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    return [
        f"machine: {m['nproc']} CPUs (nproc), {m['ram_gib']} GiB RAM (MemTotal), "
        f"{m['cpu_model']}, Python {m['python']}",
        f"command (in {report['cwd']}): {report['command']}",
    ]


def render_backfill(report: dict[str, Any]) -> str:
    s = report["seed"]
    spread = ", ".join(f"{k} {v}" for k, v in s["per_collection"].items())
    per_doc = report["naive_per_document"]
    labels = {
        "floor": "floor (read + convert + 1 load job)",
        "pipeline": f"pipeline ({report['recommended_config']})",
        "naive": f"naive ({report['rows'][2]['rows_per_request']} rows/insertAll request)",
        "naive_per_document": (
            f"naive (1 row/request, EXTRAPOLATED from first {per_doc['extrapolated_from_docs']})"
        ),
    }
    width = max(len(v) for v in labels.values()) + 2
    lines = [
        f"benchmark: {report['docs']} documents ({spread}),",
        f"  {s['users']} users x {s['days']} days ({s['window'][0]}..{s['window'][1]}), "
        f"median of {report['repeat']} run(s)",
        "",
        f"{'':<{width}}{'docs':>8}{'wall s':>10}{'docs/s':>10}{'x floor':>9}",
    ]
    for r in [*report["rows"], per_doc]:
        lines.append(
            f"{labels[r['name']]:<{width}}{r['docs']:>8}{r['wall_seconds']:>10.2f}"
            f"{r['docs_per_second'] or 0:>10.0f}{r['ratio_to_floor'] or 0:>9.2f}"
        )
    floor = report["rows"][0]
    lines += [
        f"  floor = read {floor['read_seconds']:.2f}s + convert {floor['convert_seconds']:.2f}s "
        f"+ load {floor['load_seconds']:.2f}s (in this process); every pipeline run is a new "
        f"process: python + imports alone {report['python_startup_seconds']:.2f}s",
        f"  naive 1 row/request = naive {report['rows'][2]['rows_per_request']}/request minus "
        f"its insertAll time + {per_doc['docs']} x {per_doc['seconds_per_request'] * 1000:.1f} ms "
        f"(mean request time over the first {per_doc['extrapolated_from_docs']} documents)",
        "pipeline configurations (DirectRunner = FnApiRunner; median wall, median peak RSS):",
    ]
    for c in report["pipeline_configs"]:
        mark = "" if c["ok"] else "  FAILED: " + "; ".join(c["errors"] or ["see the run logs"])
        lines.append(
            f"  {c['config']:<22}{c['wall_seconds']:>8.2f}s  peak RSS "
            f"{c['peak_rss_bytes'] / 2**20:>7.1f} MB{mark}"
        )
    fr = report["firestore_reads"]
    rpd = report["reads_per_document"]
    lines.append(
        f"Firestore reads per document, backfill window: "
        f"{'n/a' if rpd is None else f'{rpd:.2f}'} "
        f"(= {fr['documents_returned']} documents returned / {fr['documents_in_window']} "
        "in the window)"
    )
    n = report["one_day_full"]
    lines += [
        f"Firestore reads per document, one-day full run (--date {n['date']}, dry run): "
        f"{n['reads_per_document']} (= {n['documents_returned']} / {n['documents_in_window']} "
        "documents of that day)",
        f"  a full run reads every document of every collection at its snapshot, so one day "
        f"of it costs about the days of history held ({s['days']} here) reads per document; "
        "the nightly is incremental (--scenario nightly)",
        f"peak RSS of the pipeline ({report['recommended_config']}, process tree) at "
        f"{report['docs']} documents: {report['peak_rss_mb']:.1f} MB",
    ]
    t = report["targets"]
    lines.append(
        f"targets: pipeline {t['pipeline_floor_ratio']:.2f}x floor "
        f"(target <= {t['pipeline_within_floor_ratio']}); "
        f"{t['speedup_vs_naive']:.1f}x faster than naive "
        f"({t['speedup_vs_naive_per_document']:.0f}x than 1/request; target >= "
        f"{t['speedup_target']}); backfill reads/doc {'n/a' if rpd is None else f'{rpd:.2f}'} "
        f"(target {t['reads_per_document_target']:.2f})"
    )
    lines += _machine_lines(report)
    if report["failed_configs"]:
        lines.append(
            f"FAILED configurations (not recommended): {', '.join(report['failed_configs'])}"
        )
    if not report["valid"]:
        lines.append("INVALID: a reported run did not read and write every document")
    return "\n".join(lines)


def render_nightly(n: dict[str, Any]) -> str:
    edits = max(1, round(n["per_day"] * n["edit_share"]))
    lines = [
        f"nightly (incremental) runs: {n['per_day']} documents a day over the five collections; "
        f"after a first nightly (full rebuild, untimed):",
        f"  one new day ({n['per_day']} documents, yesterday) + {edits} older documents edited "
        f"({math.ceil(edits * n['moved_share'])} moved to another day), then the nightly "
        f"(timed); --verify_days {n['verify_days']}; {n['runner']}",
        "",
        f"{'history':>8}{'docs':>8}{'needed':>8}{'returned':>10}{'reads/needed':>14}"
        f"{'(audit)':>9}{'count queries':>15}{'count reads':>13}{'rows staged':>13}"
        f"{'wall s':>9}{'counts s':>10}{'prev reads':>12}{'scan KB':>10}{'drift KB':>10}"
        f"{'(unlocated)':>13}",
    ]
    for h in n["histories"]:
        if h.get("reads_per_needed") is None:
            lines.append(
                f"{h['history_days']:>7}d  FAILED: {h.get('run', h['first_run'])['error']}"
            )
            continue
        lines.append(
            f"{h['history_days']:>7}d{h['documents_seeded']:>8}{h['documents_needed']:>8}"
            f"{h['documents_returned']:>10}{h['reads_per_needed']:>14.2f}"
            f"{h['reads_per_needed_audit']:>9.2f}{h['count_queries']:>15}{h['count_reads']:>13}"
            f"{h['rows_staged']:>13}{h['wall_seconds']:>9.2f}{h['count_replay']['seconds']:>10.2f}"
            f"{h.get('previous_reads', 0):>12}{_kb(h, 'bytes'):>10}{_kb(h, 'drift'):>10}"
            f"{_kb(h, 'unlocated'):>13}"
            + ("" if h["ok"] else "  NOT AS EXPECTED")
        )
    lines.append(
        "  wall time split (the plan's queries replayed after the run, timed: count() with "
        f"{COUNT_THREADS} in flight per table, document queries one after the other):"
    )
    for h in n["histories"]:
        if h.get("reads_per_needed") is None:
            continue
        counts, reads = h["count_replay"]["seconds"], h["read_replay"]["seconds"]
        lines.append(
            f"  {h['history_days']:>5}d: {h['wall_seconds']:.1f}s = {h['count_replay']['queries']}"
            f" count() {counts:.1f}s + {h['read_replay']['queries']} document queries "
            f"({h['read_replay']['documents']} documents) {reads:.1f}s + the rest (start-up, "
            f"BigQuery, Beam) {h['wall_seconds'] - counts - reads:.1f}s"
        )
    lines += [
        "  needed = documents on the window's day + documents changed since the watermark, "
        "each once; returned = the documents_returned of the summary the run reported (audit: "
        "the sum of its _sync_runs entries' documents_returned, read by the benchmark)",
        "  count reads = billed reads of the count() aggregations (1 per 1,000 documents "
        "counted, at least 1 per query); counts s = the spans the plan counts "
        "(IncrementalPlan.count_spans) replayed at the run's snapshot, timed (on the emulator "
        "each scans the collection)",
    ]
    lines += [
        "  prev reads = previous versions of changed documents read at the last run's snapshot "
        "(one read each) so that the delete of old rows names days; scan KB = bytes the run's "
        "statements on the five tables would be billed, modelled from column sizes "
        "(devtools/bench/scan_bytes.py; BigQuery's 10 MB minimum per table left out), of "
        "which drift KB = the drift check's two queries before the read (rows per verified "
        "day; the changed documents' rows on the verified days whose count leaves room for one "
        "and, under the 10 MB floor, "
        "their days now); (unlocated) = the same run had its delete scanned _document_path "
        "over the whole table",
    ]
    with_deletes = [h for h in n["histories"] if h.get("deletes")]
    if with_deletes:
        lines += [
            "hard deletes (a separate night with the same yesterday, so only the drift check "
            "reads days):",
            f"{'history':>8}{'deleted':>9}{'drift days':>12}{'drift rebuild read':>20}"
            f"{'expected':>10}{'returned':>10}{'wall s':>9}",
        ]
        for h in with_deletes:
            d = h["deletes"]
            if "drift_days" not in d:
                lines.append(f"{h['history_days']:>7}d  FAILED: {d['run']['error']}")
                continue
            lines.append(
                f"{h['history_days']:>7}d{d['deleted']:>9}{len(d['drift_days']):>12}"
                f"{d['drift_rebuild_read']:>20}{d['drift_rebuild_expected']:>10}"
                f"{d['documents_returned']:>10}{d['wall_seconds']:>9.2f}"
                + ("" if d["ok"] else "  NOT AS EXPECTED")
            )
        lines.append(
            f"  {with_deletes[0]['deletes'].get('table', 'user_interactions')}: one document "
            "deleted on each of that many days; drift rebuild read = the documents its drifted "
            "days still hold (expected), returned = the whole run's reads (the change query "
            "re-reads the edits of the clock allowance)"
        )
    if n.get("warmup") and not n["warmup"]["ok"]:
        lines.append("  (the untimed warm-up round failed; see the run logs)")
    t = n["targets"]
    worst = n["reads_per_document"]
    ratio = n["wall_ratio_longest_to_shortest"]
    lines.append(
        f"targets: reads per needed document, worst history "
        f"{'n/a' if worst is None else f'{worst:.2f}'} (target <= "
        f"{t['reads_per_needed_document']:.2f}: {'met' if t['reads_met'] else 'NOT met'}); "
        f"nightly wall, longest / shortest history "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} (target <= "
        f"{t['wall_ratio_longest_to_shortest']}x: {'met' if t['wall_met'] else 'NOT met'})"
    )
    if "scan_met" in t:
        scan = n.get("scan_ratio_longest_to_shortest")
        every = n.get("worst_all_reads_per_needed")
        windowed = n.get("scan_ratio_within_verify_window")
        within = (
            ""
            if not windowed
            else f" (longest / {windowed['from_days']}d, the shortest history that holds "
            f"--verify_days, {windowed['ratio']:.2f}x)"
        )
        lines.append(
            f"targets: statement bytes, longest / shortest history "
            f"{'n/a' if scan is None else f'{scan:.2f}x'} (target <= "
            f"{t['scan_ratio_longest_to_shortest']}x: {'met' if t['scan_met'] else 'NOT met'})"
            f"{within}; "
            f"reads with previous versions per needed document, worst "
            f"{'n/a' if every is None else f'{every:.2f}'}"
        )
    return "\n".join(lines)


def _kb(h: dict[str, Any], key: str) -> str:
    scan = h.get("scan") or {}
    return "n/a" if scan.get(key) is None else f"{scan[key] / 1024:.1f}"


def _median_max(stats: dict[str, float | None], fmt: str) -> str:
    if stats["median"] is None:
        return "n/a"
    return f"{stats['median']:{fmt}} ({stats['max']:{fmt}})"


def render_intraday(n: dict[str, Any]) -> str:
    """The intraday table: one row per history, per run as median (max), and the day's totals."""
    lines = [
        f"intraday runs: after one nightly, {n['hours']} hourly --intraday runs while "
        f"{n['new_per_hour']} new documents and {n['edits_per_hour']} edits an hour trickle in "
        f"(--docs {n['docs']} over each history; --verify_days {n['verify_days']}; {n['runner']})",
        f"  one hour = {n['hour_seconds']:g} s real, the clock allowance scaled with it "
        f"(5 min -> {n['clock_skew_seconds']:g} s); per run: median (max)",
        "",
        f"{'history':>8}{'docs':>8}{'runs':>6}{'changed/run':>13}{'reads/changed':>15}"
        f"{'day: changed':>14}{'returned':>10}{'reads/changed':>15}{'prev reads':>12}"
        f"{'all/changed':>13}{'count() q/run':>15}"
        f"{'count() reads/run':>19}{'wall s/run':>16}{'start-up s':>14}{'start-up share':>16}"
        f"{'= rebuild':>11}",
    ]
    for h in n["histories"]:
        if not h.get("runs") or "per_run" not in h:
            lines.append(f"{h['history_days']:>7}d  FAILED: {h.get('error') or h['nightly']}")
            continue
        r, t = h["per_run"], h["totals"]
        rebuild = h.get("rebuild", {}).get("equal")
        lines.append(
            f"{h['history_days']:>7}d{h['documents_seeded']:>8}{t['runs']:>6}"
            f"{_median_max(r['documents_changed'], '.0f'):>13}"
            f"{_median_max(r['reads_per_changed'], '.3f'):>15}"
            f"{t['documents_changed']:>14}{t['documents_returned']:>10}"
            f"{h['reads_per_changed'] or 0:>15.3f}"
            f"{t.get('previous_reads', 0):>12}{h.get('all_reads_per_changed') or 0:>13.3f}"
            f"{_median_max(r['count_queries'], '.0f'):>15}"
            f"{_median_max(r['count_reads'], '.0f'):>19}"
            f"{_median_max(r['wall_seconds'], '.1f'):>16}"
            f"{_median_max(r['startup_seconds'], '.1f'):>14}"
            f"{_median_max(r['startup_share'], '.0%'):>16}"
            f"{'yes' if rebuild else 'NO':>11}"
            + ("" if h["ok"] else f"  NOT AS EXPECTED {h.get('error') or ''}".rstrip())
        )
    lines += [
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
    ]
    t = n["target"]
    worst = n["reads_per_changed"]
    verdict = "PASS" if t["met"] else "FAIL"
    lines.append(
        f"target: reads per changed document over the day, worst history "
        f"{'n/a' if worst is None else f'{worst:.3f}'} <= {t['reads_per_changed_document']:.2f}: "
        f"{verdict}"
    )
    every = n.get("all_reads_per_changed")
    if every is not None:
        lines.append(
            f"  with previous versions: worst history {every:.3f} <= "
            f"{t['reads_per_changed_document']:.2f}: {'PASS' if t.get('all_met') else 'FAIL'}"
        )
    return "\n".join(lines)


def render_onboarding(n: dict[str, Any]) -> str:
    """The onboarding table: one row per chunk, the backfill's total, the nightly after it."""
    lines = [
        f"onboarding: {n['days']} days x {n['per_day']} documents a day in "
        f"{', '.join(n['collections'])} ({n['documents_seeded']}, up to yesterday); the chunked "
        f"backfill (scripts/backfill.py's chunk commands: --mode incremental, {n['chunk_days']} "
        f"days each, every day but yesterday), {n['edits_between_chunks']} documents edited "
        "between chunks (30% of them moved to another day), then the nightly (no dates)",
        "",
        f"{'chunk':<24}{'in range':>10}{'returned':>10}{'reads/doc':>11}{'wall s':>9}",
    ]
    for c in n["chunks"]:
        lines.append(
            f"{c['first'] + '..' + c['last']:<24}{c['documents_in_range']:>10}"
            f"{c['documents_returned']:>10}{c['reads_per_document'] or 0:>11.3f}"
            f"{c['wall_seconds']:>9.1f}" + ("" if c["ok"] else "  OVER TARGET")
        )
    if "error" in n:
        return "\n".join([*lines, f"FAILED: {n['error']}"])
    b, t = n["backfill"], n["nightly"]
    both = t["documents_yesterday"] + t["documents_changed"] - t["documents_needed"]
    lines += [
        f"{'backfill':<24}{b['documents_in_range']:>10}{b['documents_returned']:>10}"
        f"{b['reads_per_document'] or 0:>11.3f}{b['wall_seconds']:>9.1f}",
        f"nightly after it (yesterday {t['yesterday']}): {t['documents_yesterday']} of "
        f"yesterday + {t['documents_changed']} changed ({both} of them on yesterday) = "
        f"{t['documents_needed']} needed (each once); returned {t['documents_returned']}, "
        f"reads/needed {t['reads_per_needed']:.3f}; "
        f"modes {', '.join(t['modes'])}; drift days {t['drift_days'] or 'none'}; "
        f"{t['wall_seconds']:.1f} s" + ("" if t["ok"] else "  OVER TARGET"),
    ]
    f = n["full_first_chunk"]
    lines += [
        f"for comparison, the first chunk with --mode full ({f['first']}..{f['last']}, another "
        f"dataset): returned {f['documents_returned']} for {f['documents_in_range']} in range, "
        f"{f['reads_per_document'] or 0:.2f} reads/doc (a full run reads all "
        f"{f['documents_in_collections']} documents of its collections); {f['wall_seconds']:.1f} s",
        f"equal to a full rebuild at the nightly's snapshot: "
        f"{'yes' if n['equal_to_rebuild'] else 'NO'}",
        "  in range = documents on the chunk's days when it ran; returned = documents "
        "Firestore returned (the run's summary); changed = documents edited between chunks",
        f"targets: each run reads at most {n['targets']['reads_per_document']:.2f}x its "
        f"documents + {n['targets']['slack_per_run']}: {'met' if n['ok'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """The whole printed report, for whichever scenarios ran."""
    if "rows" in report:
        text = render_backfill(report)
        if "nightly" in report:
            text += "\n\n" + render_nightly(report["nightly"])
        return text
    scenario = render_nightly(report["nightly"]) if "nightly" in report else ""
    if "intraday" in report:
        scenario = render_intraday(report["intraday"])
    if "onboarding" in report:
        scenario = render_onboarding(report["onboarding"])
    startup = (  # the onboarding runs are in this process
        f"every run is a new process: python + imports alone "
        f"{report['python_startup_seconds']:.2f}s"
    )
    lines = [scenario, *([] if "onboarding" in report else [startup]), *_machine_lines(report)]
    if not report["valid"]:
        lines.append(
            f"INVALID: a {report['scenario']} run failed or its tables or reads were not as "
            "expected"
        )
    return "\n".join(lines)
