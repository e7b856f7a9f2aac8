// Decode the contract's array fields into {data: TypedArray, dtype, shape}.
// Accepted forms (see docs/view_contract.md):
//   {view: DataView | ArrayBuffer | TypedArray, dtype, shape}   (live notebook)
//   {base64: string, dtype, shape}                            (offline HTML export)
// Arrays are C-contiguous little-endian. A 0 anywhere in shape means "not provided".

export const DTYPES = Object.freeze({
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
});

/** Row-major element strides for a shape. */
export function strides(shape) {
  const out = new Array(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/** Number of elements for a shape. */
export function sizeOf(shape) {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function base64ToBytes(b64) {
  const clean = String(b64).replace(/[\s]/g, "");
  if (typeof atob === "function") {
    const bin = atob(clean);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  // Node without atob (very old); never hit in browsers.
  // eslint-disable-next-line no-undef
  return new Uint8Array(Buffer.from(clean, "base64"));
}

function toBytes(v) {
  if (v instanceof DataView) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  // Cross-realm objects (e.g. a DataView from another window) fail instanceof checks.
  if (v && typeof v === "object" && typeof v.byteLength === "number" && v.buffer && typeof v.byteOffset === "number") {
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  if (v && typeof v === "object" && typeof v.byteLength === "number" && typeof v.slice === "function") {
    return new Uint8Array(v);
  }
  return null;
}

function emptyArray(dtype = "float32", shape = [0]) {
  const Ctor = DTYPES[dtype] || Float32Array;
  return { data: new Ctor(0), dtype, shape, size: 0, empty: true };
}

/**
 * Decode one array field. `null`/`undefined` give an empty float32 array of shape [0].
 * Throws a clear Error on unknown dtypes, bad shapes or a buffer that is too short.
 */
export function decodeArray(field, name = "array") {
  if (field == null) return emptyArray();
  if (typeof field !== "object") {
    throw new TypeError(`ecco_widgets: ${name} must be an object {view|base64, dtype, shape}, got ${typeof field}`);
  }
  const dtype = field.dtype;
  const Ctor = Object.prototype.hasOwnProperty.call(DTYPES, dtype) ? DTYPES[dtype] : null;
  if (!Ctor) {
    throw new Error(
      `ecco_widgets: ${name} has unsupported dtype ${JSON.stringify(dtype)}; allowed: ${Object.keys(DTYPES).join(", ")}`,
    );
  }
  const rawShape = field.shape;
  if (!Array.isArray(rawShape)) throw new Error(`ecco_widgets: ${name} has no shape list`);
  const shape = rawShape.map((d) => {
    const n = Number(d);
    if (!Number.isInteger(n) || n < 0) throw new Error(`ecco_widgets: ${name} has invalid shape ${JSON.stringify(rawShape)}`);
    return n;
  });
  const size = sizeOf(shape);
  if (size === 0) return { ...emptyArray(dtype, shape) };

  let data;
  const bpe = Ctor.BYTES_PER_ELEMENT;
  const need = size * bpe;
  if (typeof field.base64 === "string") {
    const bytes = base64ToBytes(field.base64);
    if (bytes.byteLength < need) throw new Error(`ecco_widgets: ${name}: ${bytes.byteLength} bytes for ${need} needed (shape ${shape})`);
    data = new Ctor(bytes.buffer, 0, size);
  } else {
    const src = field.view !== undefined ? field.view : field.buffer !== undefined ? field.buffer : field.data;
    if (Array.isArray(src)) {
      if (src.length < size) throw new Error(`ecco_widgets: ${name}: ${src.length} values for ${size} needed`);
      data = Ctor.from(src.slice(0, size));
    } else {
      const bytes = toBytes(src);
      if (!bytes) throw new Error(`ecco_widgets: ${name} has no data (expected view, base64 or buffer)`);
      if (bytes.byteLength < need) throw new Error(`ecco_widgets: ${name}: ${bytes.byteLength} bytes for ${need} needed (shape ${shape})`);
      if (bytes.byteOffset % bpe === 0) {
        data = new Ctor(bytes.buffer, bytes.byteOffset, size);
      } else {
        // Unaligned (e.g. a DataView at an odd byteOffset): copy into a fresh aligned buffer.
        const copy = new Uint8Array(need);
        copy.set(bytes.subarray(0, need));
        data = new Ctor(copy.buffer, 0, size);
      }
    }
  }
  return { data, dtype, shape, size, empty: false };
}

/** Element at a multi-index of a decoded array. */
export function at(arr, ...idx) {
  const st = strides(arr.shape);
  let off = 0;
  for (let i = 0; i < idx.length; i++) off += idx[i] * st[i];
  return arr.data[off];
}

/** Decode a model trait; errors propagate with the trait name. */
export function getArray(model, name) {
  return decodeArray(model.get(name), name);
}

/** Min and max of a numeric array (ignores NaN); [0, 0] for empty. */
export function extent(data) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 0];
  return [lo, hi];
}
