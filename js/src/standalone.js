// Offline-export boot script. Inlined in <script type="module"> by ecco_widgets/export.py.
// Reads #ew-bundles ({name: ESM source}) and #ew-views ([{target, bundle, state}]), gives each
// view a small model shim and calls the bundle's render({model, el}).

export function createModel(state) {
  const data = Object.assign({}, state || {});
  const listeners = new Map();
  const model = {
    get(name) {
      return data[name];
    },
    set(name, value) {
      const old = data[name];
      data[name] = value;
      if (old !== value) model.trigger(`change:${name}`, value);
    },
    on(event, cb) {
      for (const ev of String(event).split(/\s+/)) {
        if (!ev) continue;
        if (!listeners.has(ev)) listeners.set(ev, new Set());
        listeners.get(ev).add(cb);
      }
    },
    off(event, cb) {
      if (event == null) {
        listeners.clear();
        return;
      }
      for (const ev of String(event).split(/\s+/)) {
        const set = listeners.get(ev);
        if (!set) continue;
        if (cb) set.delete(cb);
        else set.clear();
      }
    },
    trigger(event, value) {
      const set = listeners.get(event);
      if (set) for (const cb of Array.from(set)) cb(model, value);
      if (event.startsWith("change:")) {
        const any = listeners.get("change");
        if (any) for (const cb of Array.from(any)) cb(model);
      }
    },
    save_changes() {
      model.saved = (model.saved || 0) + 1;
    },
    send() {},
    get widget_manager() {
      return null;
    },
  };
  return model;
}

function toBase64Utf8(src) {
  const bytes = new TextEncoder().encode(src);
  let bin = "";
  const CH = 0x8000;
  for (let i = 0; i < bytes.length; i += CH) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + CH));
  return btoa(bin);
}

export async function importSource(src) {
  let blobErr = null;
  try {
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    try {
      return await import(/* @vite-ignore */ url);
    } finally {
      // the module is evaluated once imported; the URL is no longer needed
      setTimeout(() => URL.revokeObjectURL(url), 0);
    }
  } catch (err) {
    blobErr = err;
  }
  try {
    return await import(/* @vite-ignore */ `data:text/javascript;base64,${toBase64Utf8(src)}`);
  } catch (err) {
    throw new Error(`could not load bundle (blob: ${blobErr && blobErr.message}; data URL: ${err && err.message})`);
  }
}

async function renderFrom(mod, model, el) {
  let widget = mod.default !== undefined ? mod.default : mod;
  if (typeof widget === "function") widget = await widget();
  const render = widget && typeof widget.render === "function" ? widget.render : mod.render;
  if (typeof render !== "function") throw new Error("bundle has no render function");
  if (widget && typeof widget.initialize === "function") await widget.initialize({ model });
  return render({ model, el });
}

function readJson(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return JSON.parse(node.textContent || "null");
}

function showError(el, message) {
  const box = document.createElement("div");
  box.className = "ew-error";
  box.setAttribute("role", "alert");
  box.style.color = "#d55e00";
  box.style.whiteSpace = "pre-wrap";
  box.style.fontFamily = "monospace";
  box.textContent = `ecco_widgets: ${message}`;
  el.appendChild(box);
}

export async function boot() {
  const errors = [];
  const models = [];
  try {
    const bundles = readJson("ew-bundles") || {};
    const views = readJson("ew-views") || [];
    const modules = new Map();
    for (const view of views) {
      const el = document.getElementById(view.target);
      try {
        if (!el) throw new Error(`missing target element #${view.target}`);
        if (!Object.prototype.hasOwnProperty.call(bundles, view.bundle)) throw new Error(`unknown bundle ${JSON.stringify(view.bundle)}`);
        if (!modules.has(view.bundle)) modules.set(view.bundle, importSource(bundles[view.bundle]));
        const mod = await modules.get(view.bundle);
        const model = createModel(view.state);
        models.push(model);
        await renderFrom(mod, model, el);
      } catch (err) {
        const msg = `${view.bundle} (${view.target}): ${err && err.message ? err.message : String(err)}`;
        errors.push(msg);
        showError(el || document.body, msg);
        if (typeof console !== "undefined") console.error("ecco_widgets:", err);
      }
    }
  } catch (err) {
    const msg = err && err.message ? err.message : String(err);
    errors.push(msg);
    showError(document.body, msg);
  }
  if (typeof window !== "undefined") window.__ewModels = models;
  if (errors.length) document.body.dataset.ewError = errors.join("\n");
  else document.body.dataset.ewReady = "1";
  return { errors, models };
}

if (typeof document !== "undefined" && !globalThis.__EW_NO_AUTOBOOT__) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => boot());
  else boot();
}
