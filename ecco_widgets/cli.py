"""Command line: ``ecco-widgets render`` writes one offline, interactive HTML page with all the views;
``ecco-widgets batch`` analyses a dataset of prompts into Parquet (:mod:`ecco_widgets.batch.cli`).

>>> parser = build_parser()
>>> args = parser.parse_args(["render", "--prompt", "Hi", "--out", "page.html", "--generate", "3"])
>>> args.generate, args.model
(3, None)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from .analysis.attribution.methods import MIXING_METHODS
from .batch.cli import ATTRIBUTION_CHOICES, add_batch_parser, parse_methods, run_batch
from .errors import EccoWidgetsError
from .writable import check_writable

METRICS = ("rank", "prob", "kl", "entropy")


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecco-widgets",
        description="See how a Transformer language model arrives at its words, as offline interactive HTML.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render", help="analyse a prompt and write one self-contained HTML page with all the views",
        description="Analyse a prompt (optionally generating a continuation) and write one self-contained, "
                    "interactive HTML page that opens from disk with no network.",
    )
    render.add_argument("--prompt", required=True, help="the text to analyse or to continue")
    render.add_argument("--model", default=None,
                        help="a Hugging Face hub id or a local folder of a causal LM (default: the bundled "
                             "SmolLM2-135M-Instruct, loaded offline)")
    render.add_argument("--generate", type=_count(0), default=0, metavar="N",
                        help="generate N tokens greedily after the prompt (default 0: analyse the prompt as given)")
    render.add_argument("--attribution", default="", metavar="METHODS",
                        help=f"comma-separated attribution methods to explain the generated tokens (or, with "
                             f"--generate 0, every token): {', '.join(ATTRIBUTION_CHOICES)}")
    render.add_argument("--ig-steps", type=_count(1), default=None, metavar="N",
                        help="integration points of integrated gradients (default: the library's, 96 for causal LMs)")
    render.add_argument("--activations", action="store_true",
                        help="capture MLP activations and add an NMF factor explorer")
    render.add_argument("--factors", type=_count(1), default=None, metavar="K",
                        help="NMF factors with --activations (default 8, or as many as a short text allows, said in "
                             "the view's title; an explicit K the text cannot give is an error)")
    render.add_argument("--watch", default="", metavar="TOKENS",
                        help="comma-separated single tokens whose rank at --position is shown per layer, "
                             "e.g. ' is, are' (a leading space is kept: ' is' and ' are')")
    render.add_argument("--topk", type=_count(1), default=5, help="predictions per layer in the layer view (5)")
    render.add_argument("--position", type=int, default=None, metavar="P",
                        help="the token after which the layer view and the watch view are taken (default: the last "
                             "prompt token; negative counts from the end, -1 = the last token)")
    render.add_argument("--lens", default="logit", metavar="LENS",
                        help="'logit' (default), or 'tuned:DIR' to decode the grid through the tuned lens saved in "
                             "DIR (ew.TunedLens.save or the tuned-lens package) and add a logit-vs-tuned comparison")
    render.add_argument("--metric", default="rank", choices=METRICS,
                        help="what the lens grid shows first (rank, prob, kl, entropy; the page switches)")
    render.add_argument("--lens-points", default="blocks", choices=("blocks", "sublayers"),
                        help="a grid row per block, or two (after attention, after the MLP)")
    render.add_argument("--sae", default=None, metavar="demo|FOLDER|HUB_ID",
                        help="a sparse dictionary (SAELens, sparsify, Gemma Scope folder or hub id; 'demo': "
                             "ew.demo_sae(), the bundled model's, trained at first use): the page gains its "
                             "feature explorer after the explorer (with --attribution, the first explained token's "
                             "feature attribution)")
    render.add_argument("--sae-site", default=None, metavar="HOOK",
                        help="where the --sae dictionary reads (a TransformerLens hook name or a module name; "
                             "default: the one its files name)")
    render.add_argument("--out", required=True, type=Path, help="where to write the HTML page")
    render.add_argument("--title", default=None, help="page title (default: the prompt)")
    add_batch_parser(commands)
    return parser


def _watch_tokens(text: str) -> list[str]:
    """Split ' is, are' into [' is', ' are']: every token after a comma keeps one leading space."""
    if not text:
        return []
    parts = text.split(",")
    return [parts[0]] + [" " + p.strip() for p in parts[1:]] if parts[0].startswith(" ") else [
        p.strip() if i == 0 else " " + p.strip() for i, p in enumerate(parts)]


def view_position(position: int | None, n_tokens: int, n_input_tokens: int) -> int:
    """The position of the layer and watch views: ``position`` (negative counts from the end), or by default the
    last prompt token. EccoWidgetsError when out of range.

    >>> view_position(None, 9, 6), view_position(-1, 9, 6), view_position(2, 9, 6)
    (5, 8, 2)
    """
    if position is None:
        return max(0, n_input_tokens - 1)
    if not -n_tokens <= position < n_tokens:
        raise EccoWidgetsError(f"--position {position} is out of range: the text has {n_tokens} tokens "
                               f"(0..{n_tokens - 1}, or negative from the end).")
    return position % n_tokens


def _after(out, p: int) -> str:
    """'token 5 " are"' for the view titles."""
    import json

    return f"token {p} {json.dumps(out.tokens[p], ensure_ascii=False)}"


def _tuned_lens(spec: str):
    """None for 'logit'; the TunedLens in DIR for 'tuned:DIR' (loaded before the model, so a bad folder fails fast)."""
    if spec == "logit":
        return None
    if not spec.startswith("tuned:") or not spec[len("tuned:"):]:
        raise EccoWidgetsError(f"--lens must be 'logit' or 'tuned:DIR' (a folder with config.json and params.pt), "
                               f"got {spec!r}.")
    from .analysis.tuned_lens import TunedLens

    return TunedLens.load(spec[len("tuned:"):])


def render(args: argparse.Namespace) -> Path:
    """Run the analysis described by ``args`` and write the page; returns its path."""
    from transformers.utils import logging as hf_logging

    from . import demo_model, from_pretrained
    from .results.lens_comparison import lens_comparison
    from .views.export import save_html

    hf_logging.disable_progress_bar()  # one progress bar of our own on stderr

    methods = parse_methods(args.attribution)
    check_writable(args.out)
    tuned = _tuned_lens(args.lens)
    if tuned is not None and args.lens_points != "blocks":
        raise EccoWidgetsError("A tuned lens has translators for block outputs only: drop --lens-points sublayers.")
    sae = _sae_before_model(args)
    steps = ["load model", "analyse", "build views", "write page"]
    with tqdm(total=len(steps), file=sys.stderr, desc="ecco-widgets", unit="step") as bar:
        bar.set_postfix_str(steps[0])
        lm = demo_model() if args.model is None else from_pretrained(args.model)
        if sae == "demo":
            from .models.demo_sae import demo_sae

            sae = demo_sae(lm)  # loaded from the cache; trained there at first use (minutes, with progress bars)
        bar.update()
        watch = _watch_tokens(args.watch)
        _check_before_analysis(lm, args, watch)
        bar.set_postfix_str(steps[1])
        options = dict(attribution=tuple(methods), activations=args.activations, lens_topk=max(10, args.topk),
                       n_steps=args.ig_steps, lens_points=args.lens_points)
        if sae is not None:
            options["saes"] = [(sae, args.sae_site) if args.sae_site else sae]
        if tuned is not None:
            lm.check_lens(tuned, "blocks")  # before any forward pass
        if args.generate > 0:
            out = lm.generate(args.prompt, max_new_tokens=args.generate, **options)
        else:
            out = lm.analyze(args.prompt, **options)
        bar.update()
        bar.set_postfix_str(steps[2])
        views = [out.rankings(metric=args.metric, title="Rank of the next token at every layer (logit lens)")] \
            if out.n_tokens > 1 else []
        if out.n_tokens == 1:
            print(f"ecco-widgets: {args.prompt!r} is one token: there is no next token to rank, so the page has no "
                  "rank grid (its layer predictions show what each layer expects next).", file=sys.stderr)
        if tuned is not None and out.n_tokens > 1:
            through = lm.analyze_ids(list(out.token_ids), n_input_tokens=out.n_input_tokens, lens=tuned,
                                     lens_topk=max(10, args.topk))
            views = [through.rankings(metric=args.metric, title="Rank of the next token at every layer (tuned lens)"),
                     lens_comparison({"logit": out, "tuned": through}, metric=args.metric,
                                     title="Logit lens and tuned lens, side by side")]
        p = view_position(args.position, out.n_tokens, out.n_input_tokens)
        where = "the last prompt token" if args.position is None else "--position"
        views.append(out.layer_predictions(position=p, topk=args.topk,
                                           title=f"What each layer predicts after {_after(out, p)} ({where})"))
        if watch:
            views.append(out.rankings_watch(watch, position=p,
                                            title=f"Ranks of the watched tokens after {_after(out, p)} ({where})"))
        if methods:
            views.append(out.primary_attributions(title="Input saliency: hover a generated token"))
        for method in (m for m in methods if m in MIXING_METHODS):  # layers x source tokens, per explained token
            views.append(out.context_mixing(method).view(title=f"Context mixing ({method}), layer by layer"))
        nmf, factors_note = _factors(out, args.factors) if args.activations else (None, "")
        if nmf is not None:
            views.append(nmf.explore(title=f"Neuron activation factors (NMF){factors_note}"))
        # first: the explorer, every panel linked to one selected token: at first the first explained one (a
        # generated token, whose saliency, lens column and neurons all show), or the one --position names
        explorer = out.explore(watch=watch or None, nmf=nmf, topk=args.topk,
                               selected_token=None if args.position is None else p)
        explorer.title = f"Explorer: hover or select a token (at first {_after(out, explorer.selected_token)})"
        views.insert(0, explorer)
        if sae is not None:
            views.insert(1, _feature_view(out, sae, bool(methods)))
        bar.update()
        bar.set_postfix_str(steps[3])
        path = save_html(views, args.out, title=args.title or args.prompt)
        bar.update()
    return path


def _sae_before_model(args: argparse.Namespace):
    """None, "demo" (ew.demo_sae(), taken once the bundled model is loaded) or the SAE that --sae names (loaded before
    the model, so a bad folder or hub id fails fast); EccoWidgetsError for --sae-site alone or 'demo' with --model."""
    if args.sae is None:
        if args.sae_site is not None:
            raise EccoWidgetsError("--sae-site names where a dictionary reads: give the dictionary with --sae.")
        return None
    if args.sae == "demo":
        if args.model is not None:
            raise EccoWidgetsError(f"--sae demo is the bundled model's dictionary (ew.demo_sae()), not one for "
                                   f"--model {args.model}: drop --model, or give that model's own dictionary with "
                                   "--sae FOLDER|HUB_ID (ew.SAE.fit(lm, texts, site, out=FOLDER) trains one).")
        return "demo"
    from .analysis.features import SAE

    return SAE.load(args.sae)


def _feature_view(out, sae, attribution: bool):
    """The FeatureExplorer of the analysed text's features; with ``attribution``, the first explained token's logit
    split over the latents active before it (``out.feature_attribution``: one forward and one backward)."""
    if not attribution:
        return out.explore_features()  # titled with the dictionary's site, FVU and L0 on this text
    first = int(out.targets[0])
    view = out.explore_features(attribution=out.feature_attribution(sae, positions=[first]), selected_token=first)
    view.title += f"; attribution to the logit of {_after(out, first)}"
    return view


def _check_before_analysis(lm, args: argparse.Namespace, watch: list[str]) -> None:
    """--position, --watch and an explicit --factors against the prompt, before any forward pass (EccoWidgetsError).

    The text will have at most (prompt tokens + --generate) tokens; generation may stop earlier, which the views
    check again afterwards.
    """
    for token in watch:
        lm.single_token_id(token)  # InputError naming the pieces of a watched string that is not one token
    n_prompt = len(lm.encode(args.prompt)) if isinstance(args.prompt, str) and args.prompt.strip() else 0
    if not n_prompt:
        return  # the analysis says the prompt is empty
    most = n_prompt + max(args.generate, 0)
    if args.position is not None:
        view_position(args.position, most, n_prompt)
    if args.attribution and most < 2:
        raise EccoWidgetsError(f"--attribution explains a token by the ones before it, and {args.prompt!r} is one "
                               "token with nothing generated after it: add --generate N (or a longer --prompt).")
    if args.activations and args.factors is not None and args.factors > max(most - 1, 1):
        raise EccoWidgetsError(f"--factors {args.factors} is more than this text can give: NMF factorises at most "
                               f"one factor per token after the first, and the text has at most {most} tokens "
                               f"({n_prompt} of prompt + --generate {args.generate}). Use --factors "
                               f"{max(most - 1, 1)} or fewer, or leave it out to take what the text allows.")


def _factors(out, asked: int | None):
    """(NMFResult, a note for the view's title): ``asked`` factors, or by default 8 or as many as the text allows."""
    nmf = out.run_nmf(n_components=asked)
    return nmf, (f": {nmf.note}" if nmf.note else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "batch":
        return run_batch(args)
    try:
        path = render(args)
    except EccoWidgetsError as error:
        print(f"ecco-widgets: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {path.resolve()} (open it in a browser; it needs no network).")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
