// BatchSummary: a dataset of prompts at a glance: per layer, the share already at rank 1, where rank 1 is first
// reached, the mean KL to the final layer; and how attribution falls off with distance (one chart per method).
import { decodeArray } from "./lib/arrays.js";
import { barChart } from "./lib/bars.js";
import { formatNumber } from "./lib/colors.js";
import { layerName } from "./lib/axis.js";
import { mountView, get, hint } from "./lib/model.js";

const pct = (v) => `${(100 * v).toFixed(v > 0 && v < 0.1 ? 1 : 0)}%`;

function build(ctx) {
  const { model, body, tooltip } = ctx;
  const labels = get(model, "layer_labels", []).map(String);
  const share = decodeArray(model.get("share_rank1"), "share_rank1");
  const first = decodeArray(model.get("first_layer_counts"), "first_layer_counts");
  const klField = model.get("mean_kl");
  const kl = klField ? decodeArray(klField, "mean_kl") : null;
  const methods = get(model, "methods", []).map(String);
  const byDistField = model.get("attribution_by_distance");
  const byDist = byDistField && methods.length ? decodeArray(byDistField, "attribution_by_distance") : null;
  const nPrompts = Number(get(model, "n_prompts", 0));
  const nErrors = Number(get(model, "n_errors", 0));

  const note = hint(body, `${nPrompts} prompt${nPrompts === 1 ? "" : "s"} analysed` +
    (nErrors ? `, ${nErrors} failed (see results.errors())` : "") +
    ". The next token: the first generated one, or the text's last token.");
  note.dataset.summaryCounts = "";
  const key = document.createElement("div");
  key.className = "ew-legend";
  key.textContent = "Bars: share or count of prompts per layer; KL in nats, averaged over each prompt's positions, " +
    "then over prompts; attribution: L2 norm over embedding dimensions, each row normalised to 1.";
  ctx.setLegend(key);
  if (!nPrompts) return {};
  const charts = document.createElement("div");
  charts.className = "ew-charts";
  body.appendChild(charts);
  const onHover = (i, where, rows) => (i < 0 ? tooltip.hide() : tooltip.show(rows, where));
  const add = (c) => charts.appendChild(c.el);
  const L = share.shape[0];
  add(barChart(Array.from(share.data), {
    name: "share_rank1", title: "Share of prompts whose next token is rank 1, per layer", labels,
    xLabel: "layer", yMax: 1, format: pct, onHover,
    tooltipRows: (l) => [layerName(labels[l]), ["next token at rank 1", `${pct(share.data[l])} of ${nPrompts}`]],
  }));
  const firstLabels = [...labels, "never"];
  const counts = Array.from(first.data, Number);
  add(barChart(counts, {
    name: "first_layer", title: "First layer at which the next token is rank 1 (prompts)", labels: firstLabels,
    xLabel: "layer", format: (v) => String(Math.round(v)), color: "var(--ew-accent-2, #d55e00)", onHover,
    tooltipRows: (l) => [l === L ? "never rank 1" : layerName(labels[l]), ["prompts", `${counts[l]} of ${nPrompts}`]],
  }));
  if (kl) {
    add(barChart(Array.from(kl.data), {
      name: "mean_kl", title: "Mean KL(final \u2016 layer), nats", labels, xLabel: "layer",
      format: (v) => formatNumber(v, 2), color: "var(--ew-accent-3, #009e73)", onHover,
      tooltipRows: (l) => [layerName(labels[l]), ["mean KL", `${formatNumber(kl.data[l], 4)} nats`]],
    }));
  }
  if (byDist) {
    const D = byDist.shape[1];
    const dLabels = Array.from({ length: D }, (_, d) => (d === D - 1 ? `${D}+` : String(d + 1)));
    methods.forEach((m, k) => {
      const row = Array.from(byDist.data.slice(k * D, (k + 1) * D));
      add(barChart(row, {
        name: `distance_${m}`, title: `Mean share of ${m} attribution, by distance (tokens back)`, labels: dLabels,
        xLabel: "tokens back", format: pct, color: "var(--ew-accent-4, #cc79a7)", onHover,
        tooltipRows: (d) => [`${dLabels[d]} token${d === 0 ? "" : "s"} back`, [`${m} share`, pct(row[d])]],
      }));
    });
  }
  return {};
}

export function render({ model, el }) {
  return mountView(model, el, {
    name: "batch_summary",
    traits: ["layer_labels", "share_rank1", "first_layer_counts", "mean_kl", "methods", "attribution_by_distance",
      "n_prompts", "n_errors"],
    build,
  });
}

export default { render };
