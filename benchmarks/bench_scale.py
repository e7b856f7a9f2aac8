"""How analyses grow with the length of the text, on the real SmolLM2 (2 CPU cores): time and peak RSS.

For each length (default 500, 2,000 and 8,000 tokens of the English text of Python's pydoc_data.topics) and each
job, a fresh subprocess runs the job once after loading the model, and reports its wall time and peak RSS above
the loaded model:

* analyze: the hooked forward + the logit lens of every layer (ranks + top-10), no hidden states kept;
* activations: analyze + the MLP activations of all 30 layers (float32);
* attention: analyze + every layer's attention weights (eager attention); refused up front where it won't fit;
* grad_x_input: analyze + grad x input of the last 20 tokens over their whole prefix.

Then it fits time ~ n^k and RSS ~ n^k between the two longest lengths each job completed. Not a test: run it by
hand (``python benchmarks/bench_scale.py``), or ``--lengths 500 2000`` for a quicker pass.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("analyze", "activations", "attention", "grad_x_input")

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import ecco_widgets as ew
from pydoc_data.topics import topics

job, n = sys.argv[1], int(sys.argv[2])
lm = ew.demo_model()
ids = lm.encode(" ".join(topics.values()))[:n]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
options = dict(keep_hidden_states=False, progress=False)
if job == "activations":
    options["activations"] = True
elif job == "attention":
    options["attention"] = True
elif job == "grad_x_input":
    options.update(attribution=("grad_x_input",), targets=list(range(n - 20, n)))
start = time.perf_counter()
try:
    out = lm.analyze_ids(ids, **options)
    status = "ok" + (" (checkpointed)" if out.attribution_settings.get("checkpointed") else "")
except ew.InputError as error:
    status = "refused: " + str(error).split(". ")[0]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"job": job, "n": len(ids), "seconds": seconds, "peak": peak - base, "status": status}}))
"""


def run(job: str, n: int, timeout: float) -> dict:
    code = CHILD.format(root=str(ROOT))
    try:
        done = subprocess.run([sys.executable, "-c", code, job, str(n)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"job": job, "n": n, "seconds": math.nan, "peak": math.nan, "status": f"over {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"job": job, "n": n, "seconds": math.nan, "peak": math.nan,
                "status": f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"}
    return json.loads(lines[-1])


def exponent(rows: list[dict], key: str) -> str:
    done = [r for r in rows if r["status"].startswith("ok") and r[key] > 0]
    if len(done) < 2:
        return "-"
    a, b = done[-2], done[-1]
    return f"{math.log(b[key] / a[key]) / math.log(b['n'] / a['n']):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per job (default 1800)")
    parser.add_argument("--jobs", nargs="+", choices=JOBS, default=list(JOBS))
    args = parser.parse_args()
    print(f"## SmolLM2-135M, 2 CPU cores, one subprocess per job; started {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'job':13} {'tokens':>7} {'seconds':>9} {'peak RSS GiB':>13}  status")
    results: dict[str, list[dict]] = {job: [] for job in args.jobs}
    for n in args.lengths:
        for job in args.jobs:
            row = run(job, n, args.timeout)
            results[job].append(row)
            print(f"{job:13} {row['n']:7d} {row['seconds']:9.1f} {row['peak'] / 2**30:13.2f}  {row['status']}",
                  flush=True)
    print("\n## growth between the two longest completed lengths: time ~ n^k, peak RSS ~ n^k")
    for job in args.jobs:
        print(f"{job:13} time k = {exponent(results[job], 'seconds'):>5}   RSS k = {exponent(results[job], 'peak'):>5}")


if __name__ == "__main__":
    main()
