"""Batch throughput on the bundled SmolLM2: prompts per second with 1 process and with 2 (torchrun, gloo), in one
run, through the real command (`ecco-widgets batch`), for the lens alone and for lens + 8 generated tokens +
grad x input.

Prompts: the first sentence of each of Python's pydoc_data help topics (clipped to 200 characters), N of them.
Two numbers per run: end to end (wall time of the command, model loading included) and steady state (prompts over
the wall time between the first and the last row written, from the rows' own timings: the slowest process's
analysis time). On 2 cores, 2 processes of 1 thread each against 1 process of 2 threads: the gain is what one
thread per process wins over torch's intra-op threading, not a second machine.

Run: python benchmarks/bench_batch.py [--prompts 48] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def prompts(n: int) -> list[str]:
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        first = re.split(r"(?<=[.!?])\s", " ".join(topics[key].split()), maxsplit=1)[0][:200]
        if len(first) > 20:
            out.append(first)
    return out[:n]


def run(folder: Path, source: Path, nproc: int, extra: list[str]) -> dict:
    command = [str(BIN / "ecco-widgets"), "batch", "--input", str(source), "--out", str(folder), *extra]
    if nproc > 1:
        command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", str(nproc), "--no-python", *command]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    import ecco_widgets as ew

    frame = ew.load_batch(folder).frame()
    busiest = frame.groupby("rank")["seconds"].sum().max()
    return {"processes": nproc, "prompts": len(frame), "errors": int(frame["error"].notna().sum()),
            "wall_s": round(wall, 2), "prompts_per_s_end_to_end": round(len(frame) / wall, 3),
            "analysis_s_busiest_process": round(float(busiest), 2),
            "prompts_per_s_steady": round(len(frame) / float(busiest), 3),
            "mean_tokens": round(float(frame["n_tokens"].mean()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = prompts(args.prompts)
    work = Path(tempfile.mkdtemp())
    source = work / "prompts.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    import ecco_widgets as ew

    ew.demo_model()  # converted once, before anything is timed
    jobs = {"lens": [], "generate 8 + grad_x_input": ["--generate", "8", "--attribution", "grad_x_input"]}
    report = {"cores": os.cpu_count(), "n_prompts": len(texts), "runs": {}}
    for name, extra in jobs.items():
        rows = []
        for nproc in (1, 2):
            folder = work / f"{name.split()[0]}-{nproc}"
            rows.append(run(folder, source, nproc, extra))
            shutil.rmtree(folder)
        rows.append({"speedup_end_to_end": round(rows[1]["prompts_per_s_end_to_end"]
                                                 / rows[0]["prompts_per_s_end_to_end"], 2),
                     "speedup_steady": round(rows[1]["prompts_per_s_steady"] / rows[0]["prompts_per_s_steady"], 2)})
        report["runs"][name] = rows
        print(name, json.dumps(rows, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
