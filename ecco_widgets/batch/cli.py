"""``ecco-widgets batch``: one analysis over a dataset of prompts into a Parquet folder, on one process or on every
process of ``torchrun`` / ``accelerate launch``.

>>> import argparse
>>> commands = argparse.ArgumentParser().add_subparsers(dest="command")
>>> parser = add_batch_parser(commands)
>>> args = parser.parse_args(["--input", "p.jsonl", "--out", "results", "--activations", "0,-1"])
>>> args.field, args.generate, parse_layers(args.activations)
('text', 0, [0, -1])
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..analysis.attribution.methods import METHODS
from ..errors import EccoWidgetsError, InputError

#: every method of the attribution engine: the gradient ones and context mixing (value_zeroing, alti_logit, rollout)
ATTRIBUTION_CHOICES = tuple(METHODS)


def parse_methods(text: str) -> list[str]:
    """--attribution: "ig, grad_x_input" -> ["ig", "grad_x_input"]; InputError naming the unknown ones.

    >>> parse_methods("ig, grad_x_input")
    ['ig', 'grad_x_input']
    """
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ATTRIBUTION_CHOICES]
    if unknown:
        raise InputError(f"Unknown attribution method(s) {unknown}; choose from {', '.join(ATTRIBUTION_CHOICES)}.")
    return methods


def parse_layers(text: str | None) -> bool | list[int]:
    """--activations: None -> False (none), "all" -> True, "0,3,-1" -> [0, 3, -1]."""
    if text is None:
        return False
    if text.strip() == "all":
        return True
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--activations takes 'all' or comma-separated layer numbers such as 0,5,-1; got "
                         f"{text!r}.") from None


def add_batch_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` command to an argparse sub-parsers object; returns its parser."""
    batch = commands.add_parser(
        "batch", help="analyse every prompt of a dataset into one Parquet folder (resumable; torchrun-aware)",
        description="Analyse every prompt of a dataset (logit lens always; attribution and activations when asked) "
                    "into a folder of Parquet files, one row per prompt. Under torchrun / accelerate launch each "
                    "process takes its share. Run it again to resume: prompts already written are skipped.",
    )
    batch.add_argument("--model", default=None, help="hub id or local folder of a causal LM (default: the bundled "
                                                     "SmolLM2-135M-Instruct)")
    batch.add_argument("--input", required=True, type=Path,
                       help="prompts: a .jsonl / .json / .parquet file, or a folder saved by datasets' save_to_disk")
    batch.add_argument("--field", default="text", help="the field holding each prompt's text (default: text)")
    batch.add_argument("--generate", type=int, default=0, metavar="N",
                       help="generate N tokens greedily after each prompt (default 0: analyse the prompts as given)")
    batch.add_argument("--attribution", default="", metavar="METHODS",
                       help=f"comma-separated attribution methods: {', '.join(ATTRIBUTION_CHOICES)}")
    batch.add_argument("--ig-steps", type=int, default=None, metavar="N", help="integration points of IG")
    batch.add_argument("--activations", default=None, metavar="LAYERS",
                       help="keep MLP activations of these layers ('all', or e.g. 0,5,-1)")
    batch.add_argument("--topk", type=int, default=10, help="top predictions kept per layer and position (10)")
    batch.add_argument("--hidden-states", action="store_true", help="also store every layer's hidden states")
    batch.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                       help="the model's dtype (default float32)")
    batch.add_argument("--flush-every", type=int, default=8, metavar="K",
                       help="write a part file every K prompts (a killed run redoes at most K a process; 8)")
    batch.add_argument("--summary", default=None, type=Path, metavar="PAGE",
                       help="also write the dataset summaries as an offline HTML page (by the first process)")
    batch.add_argument("--sae", default=None, type=Path, metavar="FOLDER",
                       help="a sparse dictionary's folder (SAELens, sparsify, Gemma Scope): each prompt's features are "
                            "stored in its row, then its feature dashboard is written to OUT/feature_dashboard.npz "
                            "(ew.FeatureDashboard.load)")
    batch.add_argument("--sae-site", default=None, metavar="HOOK",
                       help="where the dictionary reads (a TransformerLens hook name or a module name; default: the "
                            "one its files name)")
    batch.add_argument("--dashboard-k", type=int, default=20, metavar="K", help="top contexts kept per feature (20)")
    batch.add_argument("--dashboard-window", type=int, default=8, metavar="W",
                       help="tokens shown either side of each context's token (8)")
    batch.add_argument("--out", required=True, type=Path, help="the output folder (created; resumed if it exists)")
    return batch


def run_batch(args: argparse.Namespace) -> int:
    """Run the ``batch`` command; returns the exit status (2 with a message on bad input)."""
    try:
        return _run(args)
    except EccoWidgetsError as error:
        print(f"ecco-widgets batch: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    from ..models import demo_model, from_pretrained
    from .distributed import current_process
    from .inputs import read_prompts
    from .runner import batch
    from ..writable import check_writable, check_writable_folder

    methods = parse_methods(args.attribution)
    layers = parse_layers(args.activations)
    prompts = read_prompts(args.input, args.field)  # before the model: a bad file fails fast
    check_writable_folder(args.out, "--out")  # and where the run writes (not after the model loaded, or the run)
    if args.summary is not None:
        check_writable(args.summary, "--summary")
    sae = _load_sae(args)  # before the model: a bad folder or option fails fast
    process = current_process()
    hf_logging.disable_progress_bar()
    try:
        if args.model is None:
            lm = demo_model(device=process.device, dtype=args.dtype)
        else:
            lm = from_pretrained(args.model, dtype=args.dtype, device=process.device)
        results = batch(lm, prompts, args.out, generate=args.generate, attribution=methods, activations=layers,
                        n_steps=args.ig_steps, lens_topk=args.topk, keep_hidden_states=args.hidden_states,
                        flush_every=args.flush_every, process=process,
                        saes=[(sae, args.sae_site) if args.sae_site else sae] if sae is not None else ())
        if sae is not None:
            _dashboard(lm, sae, args, process)
        if process.rank == 0:
            frame = results.frame()
            failed, warned = int(frame["error"].notna().sum()), int(frame["warnings"].notna().sum())
            print(f"Wrote {len(results)} of {results.n_prompts} prompts to {args.out.resolve()}"
                  + (f" ({failed} failed: their rows hold the error)" if failed else "") + "."
                  + (f" {warned} prompts had warnings (the 'warnings' column of ew.load_batch(...).frame())."
                     if warned else ""))
            if args.summary is not None:
                from ..views.export import save_html

                save_html([results.summary_view()], args.summary, title=f"Batch summary: {args.out}")
                print(f"Wrote the summary page {args.summary.resolve()}.")
    finally:
        process.close()
    return 0


def _load_sae(args: argparse.Namespace) -> Any:
    """The --sae dictionary (None without one), its dashboard options checked."""
    if args.sae is None:
        if args.sae_site is not None:
            raise InputError("--sae-site names where a dictionary reads: give the dictionary with --sae.")
        return None
    if args.dashboard_k < 1 or args.dashboard_window < 0:
        raise InputError(f"--dashboard-k must be >= 1 and --dashboard-window >= 0; got {args.dashboard_k} and "
                         f"{args.dashboard_window}.")
    from ..analysis.features import SAE

    return SAE.load(args.sae)


def _dashboard(lm: Any, sae: Any, args: argparse.Namespace, process: Any) -> None:
    """The dictionary's dashboard from the run's stored features (sharded, merged), written by the first process."""
    from .dashboard import feature_dashboard

    dash = feature_dashboard(lm, sae, args.out, k=args.dashboard_k, window=args.dashboard_window,
                             site=args.sae_site, progress=False, process=process)
    if process.rank == 0:
        path = dash.save(args.out / "feature_dashboard.npz")
        print(f"Wrote the feature dashboard {path.resolve()} ({dash.n_features} features over {dash.n_tokens} "
              "tokens; ew.FeatureDashboard.load(path).view()).")
