// Building the pages: elements from data (text only, never markup: what the chain holds is
// shown, not run), formatting, and the verify buttons with their transcript panel.

import { verify } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("td", {class: "num"}, "12"). */
export const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);

/** An SVG element. */
export const s = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

// --- formatting -----------------------------------------------------------------------------

/** A long hex string shortened for a label (the whole of it in the title). */
export function short(hex, n = 8) {
  const text = String(hex || "");
  return text.length > n + 6 ? `${text.slice(0, n)}…${text.slice(-4)}` : text;
}

/** An amount in minor units with digit groups; null: a confidential amount (a commitment). */
export function amount(value) {
  if (value === null || value === undefined) return "confidential";
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function when(ms) {
  const n = Number(ms);
  return n ? new Date(n).toISOString().replace(".000Z", "Z") : "—";
}

/** Hex in a <code> that shows it whole on hover and selects whole. */
export const hex = (text, n = 8) => h("code", { class: "hex", title: text }, short(text, n));

export const link = (href, ...children) => h("a", { href }, ...children);

/** A table: headers, then rows of cells (text or nodes); attrs go on the <table>. */
export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h(
      "tbody",
      {},
      rows.length
        ? rows.map((row) => (row instanceof Node ? row : h("tr", {}, row.map((cell) => h("td", {}, cell)))))
        : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "none")),
    ),
  );
}

/** A definition list of [term, value] pairs. */
export const facts = (pairs, attrs = {}) =>
  h("dl", { class: "facts", ...attrs }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));

export const section = (title, ...children) => h("section", {}, h("h2", {}, title), ...children);

export function errorBox(err) {
  return h(
    "div",
    { class: "error", role: "alert", "data-error": err.code || "ERROR" },
    h("strong", {}, err.code || "error"),
    " ",
    err.detail || err.message || String(err),
  );
}

// --- verification ---------------------------------------------------------------------------

/** A "verify" button: asks the node for the transcript of ``params`` and shows it. */
export function verifyButton(params, label = "verify") {
  const button = h("button", {
    type: "button",
    class: "verify",
    "data-verify": new URLSearchParams(params).toString(),
    title: "prove this against the head's signed header",
  }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.dataset.result = "pending";
    showTranscript(null, params);
    try {
      const t = await verify(params);
      button.dataset.result = t.verified ? "verified" : "failed";
      button.textContent = t.verified ? "verified ✓" : "failed ✗";
      showTranscript(t, params);
    } catch (err) {
      button.dataset.result = "error";
      button.textContent = "error";
      showTranscript(err, params);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

const CHECK_FIELDS = {
  state: [
    ["key", (t) => h("code", { class: "wrap" }, t.key_text)],
    ["found", (t) => (t.found ? `yes (${t.value_bytes} bytes)` : "no: proved absent")],
    ["value digest", (t) => t.value_digest && h("code", { class: "wrap" }, t.value_digest)],
  ],
  tx: [
    ["tx id", (t) => h("code", { class: "wrap" }, t.tx_id)],
    ["position", (t) => `${t.position} of ${t.block_txs}`],
    ["receipt", (t) => t.receipt_code],
    ["receipt digest", (t) => t.receipt_digest && h("code", { class: "wrap" }, t.receipt_digest)],
    ["tx root", (t) => t.tx_root && h("code", { class: "wrap" }, t.tx_root)],
    ["receipt root", (t) => t.receipt_root && h("code", { class: "wrap" }, t.receipt_root)],
  ],
  header: [["prev hash", (t) => t.prev_hash && h("code", { class: "wrap" }, t.prev_hash)]],
};

function decodedValue(decoded) {
  if (!decoded) return null;
  const text = (v) => (v && typeof v === "object" && "name" in v ? `${v.name} (${short(v.id)})` : String(v));
  return h(
    "dl",
    { class: "decoded" },
    Object.entries(decoded).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null ? "—" : text(v))]),
  );
}

/** Show a transcript (or null: in progress; or an error) in the verification panel. */
export function showTranscript(t, params) {
  const panel = document.getElementById("transcript");
  const body = panel.querySelector(".body");
  panel.hidden = false;
  body.replaceChildren();
  const asked = h("p", { class: "asked" }, "verify ", h("code", {}, new URLSearchParams(params).toString()));
  if (t === null) {
    panel.dataset.state = "pending";
    delete panel.dataset.verified;
    body.append(asked, h("p", {}, "asking the node for the proof…"));
    return;
  }
  if (t instanceof Error) {
    panel.dataset.state = "error";
    panel.dataset.verified = "false";
    body.append(asked, errorBox(t));
    return;
  }
  panel.dataset.state = "done";
  panel.dataset.verified = String(Boolean(t.verified));
  const rows = [
    ...(CHECK_FIELDS[t.kind] || []).map(([k, f]) => [k, f(t)]),
    ["height", t.height],
    ["state root", t.state_root && h("code", { class: "wrap" }, t.state_root)],
    ["header hash", t.header_hash && h("code", { class: "wrap" }, t.header_hash)],
    ["proposer", t.proposer && h("code", { class: "wrap" }, t.proposer)],
    ["block time", when(t.timestamp_ms)],
    ["suite", t.suite],
  ].filter(([, v]) => v !== null && v !== undefined);
  fill(
    body,
    {},
    [h(
      "p",
      { class: t.verified ? "verdict ok" : "verdict bad", "data-verdict": t.verified ? "verified" : "failed" },
      t.verified ? "✓ verified" : "✗ NOT verified",
    ),
    asked,
    facts(rows),
    t.decoded ? h("h3", {}, "the proven value holds") : null,
    decodedValue(t.decoded),
    h("h3", {}, "checks"),
    h(
      "ol",
      { class: "checks" },
      t.checks.map((c) =>
        h("li", { class: c.ok ? "ok" : "bad", "data-ok": String(c.ok) }, c.ok ? "✓ " : "✗ ", c.check,
          c.detail ? h("small", {}, c.detail) : null),
      ),
    ),
    h("p", { class: "note" }, t.trust)],
  );
}
