// The node's APIs as the explorer's pages use them (docs/api.md, "The explorer"):
// the network API over HTTP/JSON (POST /api/v1/<Method>), the apps' endpoints
// (POST /v1/app/<name>: exact integers, parsed as BigInt) and the explorer's
// own verification endpoint (GET /explorer/verify).

const API = new URL("../api/v1/", import.meta.url);
const APP = new URL("../v1/app/", import.meta.url);
const VERIFY = new URL("verify", import.meta.url);
export const TIMEOUT_MS = 15000; // every request is bounded

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(`${code}${detail ? ": " + detail : ""}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

// JSON with integers beyond 2^53 kept exact (as BigInt) where the browser shows the
// reviver the source text; elsewhere they are numbers as JSON.parse makes them.
export function parseExact(text) {
  return JSON.parse(text, (key, value, context) => {
    if (
      typeof value === "number" &&
      !Number.isSafeInteger(value) &&
      context &&
      /^-?[0-9]+$/.test(context.source)
    ) {
      return BigInt(context.source);
    }
    return value;
  });
}

async function request(url, init) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  let status = 0;
  let text;
  try {
    const resp = await fetch(url, { ...init, signal: ctrl.signal, cache: "no-store" });
    status = resp.status;
    text = await resp.text();
  } catch (err) {
    const why = err.name === "AbortError" ? `no answer in ${TIMEOUT_MS / 1000} s` : String(err.message || err);
    throw new ApiError(status, "UNREACHABLE", why);
  } finally {
    clearTimeout(timer);
  }
  let value;
  try {
    value = parseExact(text);
  } catch {
    throw new ApiError(status, "BAD_ANSWER", text.slice(0, 200));
  }
  if (status < 200 || status >= 300) {
    throw new ApiError(status, (value && value.error) || `HTTP_${status}`, (value && value.detail) || "");
  }
  return value;
}

function post(url, body) {
  return request(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A method of the network API (GetHead, GetBlock, GetTx, GetInfo, ...). */
export const call = (method, body = {}) => post(new URL(method, API), body);

/** An app's endpoint (finance.lineage, finance.orgs, bills.lineage, abs.pool). */
export const app = (endpoint, body) => post(new URL(endpoint, APP), body);

/** The explorer's verification transcript of a fact (key, fact+id, tx or height). */
export const verify = (params) => request(`${VERIFY}?${new URLSearchParams(params)}`, { method: "GET" });

// --- bytes ---------------------------------------------------------------------------------

export function b64ToBytes(b64) {
  const bin = atob(b64 || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const b64ToHex = (b64) => bytesToHex(b64ToBytes(b64));

export function hexToB64(hex) {
  let bin = "";
  for (let i = 0; i < hex.length; i += 2) bin += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(bin);
}

/** Bytes as text when they are printable ASCII (event topics), else hex. */
export function bytesText(bytes) {
  return Array.from(bytes).every((b) => b >= 0x20 && b < 0x7f)
    ? String.fromCharCode(...bytes)
    : bytesToHex(bytes);
}

/** A state key for people: its printable prefix up to and with the first "/", then hex. */
export function keyText(bytes) {
  const cut = bytes.indexOf(0x2f) + 1;
  const head = bytes.slice(0, cut);
  if (cut && head.every((b) => b > 0x20 && b < 0x7f)) {
    return String.fromCharCode(...head) + bytesToHex(bytes.slice(cut));
  }
  return bytesToHex(bytes);
}
