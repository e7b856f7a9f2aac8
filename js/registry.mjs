// The one list of views, ecco_widgets/views/registry.json, for the build and the tests.
// {"views": [{"bundle", "module", "class"}, ...], "extra_bundles": ["standalone"]}
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const REGISTRY_PATH = fileURLToPath(new URL("../ecco_widgets/views/registry.json", import.meta.url));
export const REGISTRY = JSON.parse(readFileSync(REGISTRY_PATH, "utf8"));
/** Bundle names of the views (js/src/<bundle>.js -> ecco_widgets/static/<bundle>.js), in registry order. */
export const VIEW_BUNDLES = REGISTRY.views.map((v) => v.bundle);
/** Every esbuild entry: the views and the extra bundles (the offline export's boot script). */
export const ENTRIES = [...VIEW_BUNDLES, ...REGISTRY.extra_bundles];
