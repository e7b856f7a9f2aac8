// FeatureDashboard: one card per feature of a sparse dictionary over a dataset: its top-activating contexts (the
// token and a window either side, each token's background its activation on the card's scale), samples from its
// activation quantiles, the histogram of its activations (log bins), its firing density, and the tokens its decoder
// direction promotes and suppresses. A search box filters the cards by index or label; arrow keys move between
// cards, Enter / Space / click select one (selected_feature; again: none). Token text only through textContent (lib/tokens.js).
import { strengthScale, legend, formatNumber, formatPercent, strongWord } from "./lib/colors.js";
import { mountView, commit, get, hint } from "./lib/model.js";
import { cardDrawer, readCardArrays, injectCardStyles, el } from "./lib/feature_card.js";
import { injectStyleSheet } from "./lib/styles.js";

const PAGE = 24; // cards built at a time ("show more" adds the next ones)
const STYLE_ID = "ew-style-feature-dashboard-v1";
const CSS = `
.ew-fd-search { background: var(--ew-bg); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; padding: 2px 6px; font: inherit; min-width: 16em; }
.ew-fd-cards { display: flex; flex-direction: column; gap: 10px; }
.ew-fd-card { cursor: pointer; }
.ew-fd-more { background: var(--ew-bg2); color: var(--ew-fg); border: 1px solid var(--ew-border); border-radius: 4px; font: inherit; cursor: pointer; }
`;

function injectDashboardStyles(node) {
  injectCardStyles(node);
  injectStyleSheet(node, STYLE_ID, CSS);
}

/** Does feature (index f, label) match the search text? "#12" or "12": the index; anything else: in the label. */
export function matches(query, f, label) {
  const q = String(query || "").trim().toLowerCase();
  if (!q) return true;
  const num = q.replace(/^#/, "");
  if (/^\d+$/.test(num) && String(f) === num) return true;
  return String(label || "").toLowerCase().includes(q);
}

function build(ctx) {
  const { model, body, controls, tooltip, root } = ctx;
  injectDashboardStyles(root);
  const A = readCardArrays(model);
  const strings = get(model, "strings", []).map(String);
  const rawStrings = get(model, "raw_strings", []).map(String);
  const labels = get(model, "labels", []).map(String);
  const nTokens = Number(get(model, "n_tokens", 0));
  const drawer = cardDrawer({ A, strings, rawStrings, labels, nTokens, theme: ctx.theme, tooltip });
  const { F, N, ids } = drawer;

  const search = el("input", "ew-fd-search");
  search.type = "search";
  search.placeholder = "feature index (#12) or label";
  search.setAttribute("aria-label", "search features by index or label");
  search.value = String(get(model, "query", ""));
  const count = el("span", "ew-fd-count");
  controls.appendChild(search);
  controls.appendChild(count);
  if (!F) {
    hint(body, "No features in this dashboard.");
    return {};
  }
  const cards = el("div", "ew-fd-cards");
  cards.setAttribute("role", "list");
  cards.setAttribute("aria-label", "features");
  body.appendChild(cards);
  const more = el("button", "ew-fd-more", "");
  more.type = "button";
  body.appendChild(more);
  const note = String(get(model, "promoted_note", ""));
  const key = legend(strengthScale(0, 1, ctx.theme), { label: `token background: the feature's activation, 0 to ` +
    `the card's largest (${strongWord(ctx.theme)}); the outlined token is the context's own`, format: (v) => formatNumber(v, 2) });
  ctx.setLegend(key);

  let shown = [];
  let limit = PAGE;
  let selected = Number(get(model, "selected_feature", -1));

  const card = (r) => {
    const f = ids[r];
    const c = drawer.card(r, f === selected);
    c.setAttribute("role", "listitem");
    c.tabIndex = -1;
    const fires = Number(A.fire_counts.data[r]);
    const summary = () => [`feature ${f}`, labels[r] ? ["label", labels[r]] : null, ["density", formatPercent(nTokens ? fires / nTokens : 0)],
      ["fires on", `${fires} of ${nTokens} tokens`], ["max", formatNumber(drawer.peak(r), 4)]];
    c.addEventListener("click", () => select(f, c));
    c.addEventListener("focus", () => tooltip.show(summary(), c));
    c.addEventListener("blur", () => tooltip.hide());
    return c;
  };

  const select = (f, c) => { // a second click / Enter on the selected card clears the selection
    selected = selected === f ? -1 : f;
    for (const other of cards.querySelectorAll(".ew-fd-card.ew-selected")) other.classList.remove("ew-selected");
    if (c && selected === f) c.classList.add("ew-selected");
    commit(model, "selected_feature", selected);
  };

  const render = () => {
    shown = [];
    for (let r = 0; r < F; r++) if (matches(search.value, ids[r], labels[r])) shown.push(r);
    cards.textContent = "";
    for (const r of shown.slice(0, limit)) cards.appendChild(card(r));
    const first = cards.querySelector(".ew-fd-card.ew-selected") || cards.firstChild;
    if (first) first.tabIndex = 0;
    count.textContent = `${shown.length} of ${F} features` + (shown.length > limit ? `, first ${limit} shown` : "");
    more.hidden = shown.length <= limit;
    more.textContent = `show ${Math.min(PAGE, shown.length - limit)} more`;
    if (note && N) {
      const n = el("div", "ew-fd-note", note);
      cards.appendChild(n);
    }
  };
  search.addEventListener("input", () => {
    limit = PAGE;
    render();
  });
  more.addEventListener("click", () => {
    limit += PAGE;
    render();
  });
  cards.addEventListener("keydown", (ev) => {
    const list = [...cards.querySelectorAll(".ew-fd-card")];
    const i = list.indexOf(ev.target);
    if (i < 0 || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    let j = i;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") j = Math.min(list.length - 1, i + 1);
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") j = Math.max(0, i - 1);
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = list.length - 1;
    else if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      select(Number(list[i].dataset.feature), list[i]);
      return;
    } else return;
    ev.preventDefault();
    list[i].tabIndex = -1;
    list[j].tabIndex = 0;
    list[j].focus();
  });
  render();
  return {
    onTrait: {
      selected_feature: () => {
        selected = Number(get(model, "selected_feature", -1));
        for (const c of cards.querySelectorAll(".ew-fd-card")) c.classList.toggle("ew-selected", Number(c.dataset.feature) === selected);
      },
    },
  };
}

export function render({ model, el: host }) {
  return mountView(model, host, {
    name: "feature_dashboard",
    traits: ["feature_ids", "labels", "strings", "raw_strings", "fire_counts", "n_tokens", "n_docs", "top_values",
      "top_docs", "top_positions", "top_tokens", "top_acts", "sample_values", "sample_docs", "sample_positions",
      "sample_tokens", "sample_acts", "hist", "hist_edges", "promoted_tokens", "promoted_values", "suppressed_tokens",
      "suppressed_values", "promoted_note", "query"],
    localTraits: ["selected_feature"],
    build,
  });
}

export default { render };
