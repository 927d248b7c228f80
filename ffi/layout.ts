/**
 * C struct and union layouts as data: each is a list of `[name, type]` fields, and the
 * offsets, size and alignment follow by the System V x86-64 psABI rules (§3.1.2: every
 * scalar is aligned to its size, an aggregate to its most aligned member, and its size is
 * rounded up to that alignment). Accessors for scalar fields are generated from the
 * layout, never written per field.
 *
 * Not supported, because libibverbs' structs need none of them: bit-fields, packed or
 * over-aligned members, flexible array members.
 *
 * @example
 * ```ts
 * import { anonymous, struct, union } from "./layout.ts";
 *
 * const wc = struct("ibv_wc", [
 *   ["wr_id", "u64"],
 *   ["status", "u32"],
 *   ["opcode", "u32"],
 *   anonymous(union("ibv_wc.imm", [["imm_data", "u32"], ["invalidated_rkey", "u32"]])),
 * ]);
 * const wrId = wc.field("wr_id"); // once, at module load
 * const view = new DataView(new ArrayBuffer(wc.size));
 * wrId.set(view, 0, 42);
 * wrId.get(view); // 42
 * wc.offsetOf("imm_data"); // 16
 * ```
 *
 * @module
 */

import { assert, InvariantError } from "../lib/assert.ts";

/** A C scalar: fixed-width integers, floats, and `"ptr"` for any data or function pointer. */
export type Scalar = keyof typeof scalarBytes;

const scalarBytes = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  u64: 8,
  i64: 8,
  f32: 4,
  f64: 8,
  ptr: 8,
} as const;

/** A C enum: 4 bytes, read and written as its base type. Made by {@linkcode enumOf}. */
export interface EnumType {
  readonly kind: "enum";
  readonly name: string;
  readonly base: "u32" | "i32";
}

/** A fixed-size C array `T name[count]`. Made by {@linkcode array}. */
export interface ArrayType {
  readonly kind: "array";
  readonly of: FieldType;
  readonly count: number;
}

/** A type known only by its size and alignment, like `pthread_mutex_t`. Made by {@linkcode opaque}. */
export interface OpaqueType {
  readonly kind: "opaque";
  readonly name: string;
  readonly size: number;
  readonly align: number;
}

/** Any type a field can have: a scalar, enum, array, opaque blob, or nested struct/union. */
export type FieldType = Scalar | EnumType | ArrayType | OpaqueType | Layout<string>;

/** A field declaration `[name, type]`; the empty name marks a C11 anonymous member. */
export type Field = readonly [name: string, type: FieldType];

/** One named member at any depth, with its offset from the start of the outermost layout. */
export interface Member {
  /** Dotted path as C would write it after `offsetof(T, ...)`, e.g. `"wr.rdma.rkey"`. */
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  readonly align: number;
  readonly type: FieldType;
}

/** Reads and writes one scalar field; created once by {@linkcode Layout.field}, then reused. */
export interface Accessor {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  /** The scalar type read and written (an enum's base type). */
  readonly type: Scalar;
  /** Reads the field of the struct at byte `base` of `view`; 64-bit values must be safe integers. */
  get(view: DataView, base?: number): number;
  /** Writes the field; throws unless `value` fits the type (64-bit: a safe integer). */
  set(view: DataView, base: number, value: number): void;
  /** Reads the field as a bigint, exact for full 64-bit values. */
  getBig(view: DataView, base?: number): bigint;
  /** Writes the field from a bigint; throws unless `value` fits the type. */
  setBig(view: DataView, base: number, value: bigint): void;
  /** Reads the field of a C-owned struct at `ptr + base` (allocates; not for hot paths). */
  read(ptr: Deno.PointerObject, base?: number): number;
  /** Reads a `"ptr"` field of a C-owned struct at `ptr + base` as a pointer object. */
  readPointer(ptr: Deno.PointerObject, base?: number): Deno.PointerValue;
}

/** A computed struct or union layout; `P` is the union of its member paths. */
export interface Layout<P extends string = string> {
  readonly kind: "struct" | "union";
  /** The C tag (`ibv_sge` for `struct ibv_sge`) or a descriptive name for an untagged type. */
  readonly name: string;
  readonly fields: readonly Field[];
  readonly size: number;
  readonly align: number;
  /** Every named member at every depth; anonymous members contribute their members only. */
  readonly members: readonly Member[];
  /** Byte offset of a member path; a trailing number indexes an array (`"fw_ver.3"`). */
  offsetOf(path: P): number;
  /** Accessor for a scalar or enum member; call once at module load and keep it. */
  field(path: P): Accessor;
}

type PathsOfType<T> = T extends Layout<infer P> ? P : T extends ArrayType ? `${number}` : never;
type PathsOfField<F> = F extends readonly [infer N extends string, infer T]
  ? N extends "" ? PathsOfType<T> : N | `${N}.${PathsOfType<T>}`
  : never;
/** Member paths of a field list, so that TypeScript checks the paths given to a layout. */
export type PathsOf<F extends readonly Field[]> = PathsOfField<F[number]>;

/** Declares a C enum (4 bytes); `base` is `"i32"` if the enum has negative values. */
export function enumOf(name: string, base: "u32" | "i32" = "u32"): EnumType {
  return { kind: "enum", name, base };
}

/** Declares a fixed-size array `T[count]`. */
export function array(of: FieldType, count: number): ArrayType {
  assert(Number.isInteger(count) && count > 0, `Array length must be a positive integer`);
  return { kind: "array", of, count };
}

/** Declares an opaque blob of known size and alignment, e.g. `opaque(40, 8, "pthread_mutex_t")`. */
export function opaque(size: number, align: number, name = "opaque"): OpaqueType {
  assert(size % align === 0, `Opaque ${name}: size ${size} is not a multiple of ${align}`);
  return { kind: "opaque", name, size, align };
}

/** Marks a struct or union as a C11 anonymous member: its members are addressed directly. */
export function anonymous<T extends Layout<string>>(type: T): readonly ["", T] {
  return ["", type];
}

/** Returns the size in bytes of any field type. */
export function sizeOf(type: FieldType): number {
  if (typeof type === "string") return scalarBytes[type];
  if (type.kind === "enum") return 4;
  if (type.kind === "array") return sizeOf(type.of) * type.count;
  return type.size;
}

/** Returns the alignment in bytes of any field type. */
export function alignOf(type: FieldType): number {
  if (typeof type === "string") return scalarBytes[type];
  if (type.kind === "enum") return 4;
  if (type.kind === "array") return alignOf(type.of);
  return type.align;
}

/** Lays out a C struct: fields in order, each at the next offset aligned for its type. */
export function struct<const F extends readonly Field[]>(
  name: string,
  fields: F,
): Layout<PathsOf<F>> {
  return build("struct", name, fields);
}

/** Lays out a C union: every field at offset 0, size that of the largest, rounded up. */
export function union<const F extends readonly Field[]>(
  name: string,
  fields: F,
): Layout<PathsOf<F>> {
  return build("union", name, fields);
}

function build<P extends string>(
  kind: "struct" | "union",
  name: string,
  fields: readonly Field[],
): Layout<P> {
  let end = 0;
  let align = 1;
  const members: Member[] = [];
  for (const [fieldName, type] of fields) {
    const fieldAlign = alignOf(type);
    const at = kind === "struct" ? roundUp(end, fieldAlign) : 0;
    end = Math.max(end, at + sizeOf(type));
    align = Math.max(align, fieldAlign);
    assert(fieldName !== "" || isLayout(type), `${name}: only a struct or union can be anonymous`);
    if (fieldName !== "") {
      members.push({ path: fieldName, offset: at, size: sizeOf(type), align: fieldAlign, type });
    }
    if (isLayout(type)) {
      const prefix = fieldName === "" ? "" : `${fieldName}.`;
      for (const m of type.members) {
        members.push({ ...m, path: prefix + m.path, offset: at + m.offset });
      }
    }
  }
  const byPath = new Map<string, Member>();
  for (const m of members) {
    assert(!byPath.has(m.path), `${kind} ${name}: duplicate member "${m.path}"`);
    byPath.set(m.path, m);
  }
  const resolve = (path: string): { offset: number; type: FieldType } => {
    const found = byPath.get(path);
    if (found !== undefined) return found;
    const dot = path.lastIndexOf(".");
    const outer = byPath.get(path.slice(0, dot));
    const index = Number(path.slice(dot + 1));
    if (dot > 0 && outer !== undefined && typeof outer.type !== "string") {
      const t = outer.type;
      if (t.kind === "array" && Number.isInteger(index) && index >= 0 && index < t.count) {
        return { offset: outer.offset + index * sizeOf(t.of), type: t.of };
      }
    }
    throw new InvariantError(`No member "${path}" in ${kind} ${name}`);
  };
  return {
    kind,
    name,
    fields,
    size: roundUp(end, align),
    align,
    members,
    offsetOf: (path) => resolve(path).offset,
    field: (path) => {
      const { offset, type } = resolve(path);
      const scalar = typeof type === "string" ? type : type.kind === "enum" ? type.base : null;
      assert(scalar !== null, `${kind} ${name}: member "${path}" is not a scalar`);
      return accessor(path, offset, scalar);
    },
  };
}

function isLayout(type: FieldType): type is Layout<string> {
  return typeof type !== "string" && (type.kind === "struct" || type.kind === "union");
}

function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

const twoTo32 = 2 ** 32;

function accessor(path: string, offset: number, type: Scalar): Accessor {
  const o = offset;
  const bits = BigInt(8 * scalarBytes[type]);
  const float = type === "f32" || type === "f64";
  const wide = bits === 64n && !float;
  const minBig = type.startsWith("i") ? -(1n << (bits - 1n)) : 0n;
  const maxBig = (1n << (type.startsWith("i") ? bits - 1n : bits)) - 1n;
  const [min, max] = [Number(minBig), Number(maxBig)];
  const bad = (value: unknown): never => {
    throw new InvariantError(`Cannot store ${value} in ${type} field "${path}": out of range`);
  };
  const check = (x: number): number => {
    if (!float && !(Number.isSafeInteger(x) && x >= min && x <= max)) bad(x);
    return x;
  };
  const get64 = (hi: number, lo: number): number => {
    const value = hi * twoTo32 + lo;
    if (!Number.isSafeInteger(value)) {
      throw new InvariantError(`${type} field "${path}" is not a safe integer: use getBig`);
    }
    return value;
  };
  const get = getters[type](o, get64);
  const set = setters[type](o, check);
  return {
    path,
    offset,
    size: scalarBytes[type],
    type,
    get,
    set,
    getBig: (v, b = 0) => {
      if (!wide) return BigInt(get(v, b));
      return type === "i64" ? v.getBigInt64(b + o, true) : v.getBigUint64(b + o, true);
    },
    setBig: (v, b, x) => {
      if (float || x < minBig || x > maxBig) bad(x);
      if (!wide) set(v, b, Number(x));
      else if (type === "i64") v.setBigInt64(b + o, x, true);
      else v.setBigUint64(b + o, x, true);
    },
    read: (ptr, base = 0) => {
      const bytes = Deno.UnsafePointerView.getArrayBuffer(ptr, o + scalarBytes[type], base);
      return get(new DataView(bytes), 0);
    },
    readPointer: (ptr, base = 0) => {
      assert(type === "ptr", `Field "${path}" is ${type}, not a pointer`);
      return new Deno.UnsafePointerView(ptr).getPointer(base + o);
    },
  };
}

type Getter = (v: DataView, b?: number) => number;
type Setter = (v: DataView, b: number, x: number) => void;
type Get64 = (hi: number, lo: number) => number;

// A closure per field over a fixed DataView method keeps each call site monomorphic.
const getters: Readonly<Record<Scalar, (o: number, g: Get64) => Getter>> = {
  u8: (o) => (v, b = 0) => v.getUint8(b + o),
  i8: (o) => (v, b = 0) => v.getInt8(b + o),
  u16: (o) => (v, b = 0) => v.getUint16(b + o, true),
  i16: (o) => (v, b = 0) => v.getInt16(b + o, true),
  u32: (o) => (v, b = 0) => v.getUint32(b + o, true),
  i32: (o) => (v, b = 0) => v.getInt32(b + o, true),
  f32: (o) => (v, b = 0) => v.getFloat32(b + o, true),
  f64: (o) => (v, b = 0) => v.getFloat64(b + o, true),
  i64: (o, g) => (v, b = 0) => g(v.getInt32(b + o + 4, true), v.getUint32(b + o, true)),
  u64: (o, g) => (v, b = 0) => g(v.getUint32(b + o + 4, true), v.getUint32(b + o, true)),
  ptr: (o, g) => getters.u64(o, g),
};

// 64-bit values are written as two little-endian 32-bit halves: no bigint on the hot path.
const setters: Readonly<Record<Scalar, (o: number, c: (x: number) => number) => Setter>> = {
  u8: (o, c) => (v, b, x) => v.setUint8(b + o, c(x)),
  i8: (o, c) => (v, b, x) => v.setInt8(b + o, c(x)),
  u16: (o, c) => (v, b, x) => v.setUint16(b + o, c(x), true),
  i16: (o, c) => (v, b, x) => v.setInt16(b + o, c(x), true),
  u32: (o, c) => (v, b, x) => v.setUint32(b + o, c(x), true),
  i32: (o, c) => (v, b, x) => v.setInt32(b + o, c(x), true),
  f32: (o) => (v, b, x) => v.setFloat32(b + o, x, true),
  f64: (o) => (v, b, x) => v.setFloat64(b + o, x, true),
  i64: (o, c) => (v, b, x) => {
    v.setUint32(b + o, c(x) >>> 0, true);
    v.setInt32(b + o + 4, Math.floor(x / twoTo32), true);
  },
  u64: (o, c) => (v, b, x) => {
    v.setUint32(b + o, c(x) >>> 0, true);
    v.setUint32(b + o + 4, Math.floor(x / twoTo32), true);
  },
  ptr: (o, c) => setters.u64(o, c),
};
