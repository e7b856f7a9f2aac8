import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeArray, strides, DTYPES, at, sizeOf, extent } from "../src/lib/arrays.js";

const SAMPLES = {
  float32: [1.5, -2.25, 3, 0],
  float64: [1e-300, -2.5, Math.PI, 7],
  int32: [-2147483648, 2147483647, 0, -1],
  uint32: [0, 4294967295, 1, 2],
  int16: [-32768, 32767, 5, -5],
  uint16: [0, 65535, 1, 2],
  int8: [-128, 127, 0, -1],
  uint8: [0, 255, 1, 2],
};

function bytesOf(dtype, values) {
  return new Uint8Array(DTYPES[dtype].from(values).buffer);
}

for (const [dtype, values] of Object.entries(SAMPLES)) {
  test(`${dtype}: DataView with non-zero byteOffset`, () => {
    const bytes = bytesOf(dtype, values);
    const buf = new ArrayBuffer(bytes.length + 24);
    new Uint8Array(buf).fill(0xee);
    new Uint8Array(buf, 16, bytes.length).set(bytes);
    const out = decodeArray({ view: new DataView(buf, 16, bytes.length), dtype, shape: [2, 2] });
    assert.equal(out.dtype, dtype);
    assert.deepEqual(out.shape, [2, 2]);
    assert.ok(out.data instanceof DTYPES[dtype]);
    assert.deepEqual(Array.from(out.data), values);
  });
  test(`${dtype}: base64, ArrayBuffer and TypedArray forms`, () => {
    const bytes = bytesOf(dtype, values);
    const b64 = Buffer.from(bytes).toString("base64");
    assert.deepEqual(Array.from(decodeArray({ base64: b64, dtype, shape: [4] }).data), values);
    assert.deepEqual(Array.from(decodeArray({ view: bytes.buffer.slice(0), dtype, shape: [4] }).data), values);
    assert.deepEqual(Array.from(decodeArray({ view: DTYPES[dtype].from(values), dtype, shape: [4] }).data), values);
  });
}

test("unaligned byteOffset is copied, not misread", () => {
  const src = new Float32Array([1.25, -8, 3.5]);
  const buf = new ArrayBuffer(3 + src.byteLength);
  new Uint8Array(buf, 3).set(new Uint8Array(src.buffer));
  const out = decodeArray({ view: new DataView(buf, 3, src.byteLength), dtype: "float32", shape: [3] });
  assert.deepEqual(Array.from(out.data), [1.25, -8, 3.5]);
});

test("decoding respects byteLength window (does not read the whole buffer)", () => {
  const all = new Int32Array([9, 9, 1, 2, 3, 9]);
  const out = decodeArray({ view: new DataView(all.buffer, 8, 12), dtype: "int32", shape: [3] });
  assert.deepEqual(Array.from(out.data), [1, 2, 3]);
});

test("unknown dtype is rejected with a clear error", () => {
  assert.throws(() => decodeArray({ view: new ArrayBuffer(8), dtype: "int64", shape: [1] }), /unsupported dtype "int64".*float32/);
  assert.throws(() => decodeArray({ view: new ArrayBuffer(8), dtype: "float16", shape: [1] }), /unsupported dtype/);
  assert.throws(() => decodeArray({ view: new ArrayBuffer(8), dtype: "constructor", shape: [1] }), /unsupported dtype/);
});

test("too short buffers and bad shapes are rejected", () => {
  assert.throws(() => decodeArray({ view: new ArrayBuffer(4), dtype: "float32", shape: [2] }), /bytes/);
  assert.throws(() => decodeArray({ view: new ArrayBuffer(4), dtype: "float32", shape: [-1] }), /shape/);
  assert.throws(() => decodeArray({ view: new ArrayBuffer(4), dtype: "float32" }), /shape/);
});

test("a 0 in the shape means not provided", () => {
  const out = decodeArray({ view: new ArrayBuffer(0), dtype: "int32", shape: [0] });
  assert.equal(out.empty, true);
  assert.equal(out.data.length, 0);
  const out2 = decodeArray({ base64: "", dtype: "float32", shape: [3, 0, 2] });
  assert.equal(out2.empty, true);
  assert.equal(decodeArray(null).empty, true);
});

test("base64 with whitespace and multi-dimensional indexing", () => {
  const v = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const b64 = Buffer.from(v.buffer).toString("base64").replace(/(.{8})/g, "$1\n");
  const out = decodeArray({ base64: b64, dtype: "float32", shape: [2, 3, 2] });
  assert.equal(at(out, 1, 2, 1), 11);
  assert.equal(at(out, 0, 1, 0), 2);
  assert.equal(at(out, 1, 0, 1), 7);
});

test("strides and sizes", () => {
  assert.deepEqual(strides([2, 3, 4]), [12, 4, 1]);
  assert.deepEqual(strides([5]), [1]);
  assert.deepEqual(strides([]), []);
  assert.equal(sizeOf([2, 3, 4]), 24);
  assert.deepEqual(extent(new Float32Array([3, -1, 7])), [-1, 7]);
});
