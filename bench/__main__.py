"""``make bench``: run every benchmark, print one table of figures and write ``results.json``.

``python -m bench [bench_name ...]`` runs the named ``bench/bench_*.py`` modules (default: all,
in :data:`ORDER`). Each module's ``main()`` prints its own progress and returns table rows (see
:func:`bench._wrk.row`); at the end one table lists every figure next to its baseline, the
ratio, the target and whether it was met, and ``bench/results.json`` receives every row with
the per-run details, the settings and the machine's load average before and after (the figures
of a busy machine are noise). Exit status 1 if a benchmark failed to run; a missed target is a
figure, not a failure.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["ORDER", "main", "table"]

#: The order benchmarks run in (others found in ``bench/`` run after these, by name).
ORDER = ("bench_submissions", "bench_telegram", "bench_outbox", "bench_stored", "bench_results")
_SETTINGS = (
    "PUFA_BENCH_SECONDS",
    "PUFA_BENCH_ROUNDS",
    "PUFA_BENCH_TOKENS",
    "PUFA_BENCH_STORED",
    "PUFA_BENCH_CONNECTIONS",
    "PUFA_BENCH_POSTGRES",
    "PUFA_BENCH_OUTBOX_MESSAGES",
    "PUFA_BENCH_OUTBOX_RATE",
    "PUFA_BENCH_RESULTS_REPEAT",
    "PUFA_BENCH_SERVER_ROOT",
)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table (benchmark, case, figure, value, baseline, ratio,
    target, met?)."""
    header = ("benchmark", "case", "figure", "value", "baseline", "ratio", "target", "met?")
    lines = [header] + [
        (
            str(r["benchmark"]),
            str(r["case"]),
            str(r["figure"]),
            _number(r["value"]),
            _number(r["baseline"]),
            "" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            str(r["target"]),
            "" if r["met"] is None else ("yes" if r["met"] else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5}
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> None:
    """Run the benchmarks named on the command line (default: all); print the table."""
    folder = Path(__file__).resolve().parent
    found = {m.name for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("bench_")}
    names = [n for n in ORDER if n in found] + sorted(found - set(ORDER))
    only = sys.argv[1:]
    unknown = [n for n in only if n not in found]
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(unknown)} (have {', '.join(names)})")
    if only:
        names = [n for n in names if n in only]
    started = time.time()
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}", flush=True)
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in names:
        print(f"== {name} ==", flush=True)
        began = time.perf_counter()
        try:
            got = importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            got = []
        for r in got or []:
            r.setdefault("module", name)
        rows.extend(got or [])
        print(f"   ({name}: {time.perf_counter() - began:.0f} s)", flush=True)
    load_after = os.getloadavg()
    print()
    print(table(rows))
    print(
        f"\n{len(rows)} figures; {sum(1 for r in rows if r['met'] is False)} targets not met;"
        f" load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on"
        f" {os.cpu_count()} CPUs (a busy machine makes these figures noise)"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "settings": {k: os.environ[k] for k in _SETTINGS if k in os.environ},
        "benchmarks": names,
        "failed": failed,
        "rows": rows,
    }
    (folder / "results.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8"
    )
    print(f"wrote {folder / 'results.json'}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
