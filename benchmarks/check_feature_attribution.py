"""Feature attribution against exact ablation, on the bundled model with its demo SAE (ew.demo_sae(): trained at first
use, ~100 s): for three texts, the last token's logit is attributed to the latents active before it
(out.feature_attribution), and each of the 10 (latent, token) entries of largest |attribution| (the first token left
out: the attention sink, outside what the SAE was trained on) is removed exactly, one forward each (its activation
times its decoder row subtracted from block 15's output at that token, the error kept). Prints the correlation, the
sign agreement and the median relative difference. Not part of `make test`; results in docs/features.md.

Run: python benchmarks/check_feature_attribution.py
"""
import numpy as np, torch, warnings
import ecco_widgets as ew
torch.set_num_threads(1)
lm = ew.demo_model()
sae = ew.demo_sae(lm, progress=False)
block = lm.model.model.layers[15]
texts = ["A for statement iterates over the elements of a sequence, such as a string, a tuple or a list. "
         "The while statement repeats as long as an expression is true. A break statement ends the",
         "The keys to the cabinet are on the table. The key to the cabinets is in the drawer. Where are the keys? The keys are",
         "In Python, a function is defined with the def keyword, followed by its name and a list of parameters in"]
rows = []
for text in texts:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lm.analyze(text, saes=[sae])
    fa = out.feature_attribution(sae)
    t = int(fa.positions[0]); target = int(fa.target_ids[0]); row = t - 1
    ids = torch.tensor([list(out.token_ids)])
    def logit(edit=None):
        h = None
        if edit is not None:
            def hook(m, a, o):
                x = (o[0] if isinstance(o, tuple) else o).clone()
                x[0, edit[0]] -= edit[1]
                return (x, *o[1:]) if isinstance(o, tuple) else x
            h = block.register_forward_hook(hook)
        try:
            with torch.no_grad():
                return float(lm.model(input_ids=ids).logits[0, row, target])
        finally:
            if h: h.remove()
    clean = logit()
    top = [r for r in fa.top(0, k=40) if r["position"] > 0][:10]
    for r in top:
        delta = r["activation"] * sae.W_dec[r["feature"]].float()
        rows.append((r["attribution"], clean - logit((r["position"], delta))))
a, e = np.array(rows).T
print(f"{len(rows)} latents over {len(texts)} texts: correlation {np.corrcoef(a, e)[0, 1]:.3f}, "
      f"sign agreement {np.mean(np.sign(a) == np.sign(e)):.2f}, median |attr - exact| / |exact| "
      f"{np.median(np.abs(a - e) / np.maximum(np.abs(e), 1e-6)):.2f}")
