// A voucher's lineage (finance.lineage) as a graph: its trade documents -> the root
// confirmation -> the pieces, split by split -> their holders -> financings -> settlement;
// and the same facts as tables, each with a verify button.

import { app } from "./api.js";
import { amount, facts, h, hex, link, section, short, table, verifyButton, when } from "./dom.js";
import { layered } from "./graph.js";

export function idForm(route, label, value) {
  const input = h("input", {
    name: "id",
    value: value || "",
    placeholder: "32 hex digits",
    pattern: "[0-9a-fA-F]{32}",
    required: true,
    size: 36,
    "aria-label": label,
  });
  const form = h("form", { class: "id-form" }, h("label", {}, label, " ", input), " ", h("button", { type: "submit" }, "show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/${route}/${input.value.trim().toLowerCase()}`;
  });
  return form;
}

const orgFact = (name) => ({ fact: "org", name });

function pieceDetails(p, voucherId) {
  return h(
    "div",
    { class: "details", "data-piece": p.piece },
    facts([
      ["piece", h("code", { class: "wrap" }, p.piece)],
      ["parent", p.parent ? link(`#/voucher/${p.parent}`, hex(p.parent)) : "none: the root confirmation"],
      ["depth", p.depth],
      ["amount", h("span", { class: "amount" }, amount(p.amount))],
      ["holder", p.holder, " ", verifyButton(orgFact(p.holder), "verify holder")],
      ["state", p.state],
      ["counterparty", p.counterparty || "—"],
      ["voucher", link(`#/voucher/${voucherId}`, hex(voucherId))],
      ["verify", verifyButton({ fact: "piece", id: p.piece }, "verify piece")],
    ]),
    table(
      ["event", "height", "by", "amount", "price / ways"],
      p.history.map((e) => [
        e.event, link(`#/block/${e.height}`, e.height), e.org, amount(e.amount),
        e.price != null ? amount(e.price) : e.ways ?? "—",
      ]),
      { class: "history" },
    ),
  );
}

function graphOf(lin, focusId, select) {
  const v = lin.voucher;
  const pieces = [lin.piece, ...lin.descendants];
  const byId = new Map(pieces.map((p) => [p.piece, p]));
  const nodes = [];
  const edges = [];
  const maxDepth = Math.max(...pieces.map((p) => p.depth));
  const layerHolders = 2 + maxDepth + 1;
  // documents -> confirmation
  v.documents.forEach((d, i) => {
    const id = `doc:${d.type}:${d.fingerprint}`;
    nodes.push({
      id, layer: 0, kind: "doc", order: i,
      lines: [d.type, short(d.fingerprint, 12), `by ${d.anchored_by ?? "?"}`],
      title: `${d.type} ${d.fingerprint}`,
      data: { fingerprint: d.fingerprint, type: d.type },
      detail: () => h("div", { class: "details" }, facts([
        ["document", d.type],
        ["fingerprint", h("code", { class: "wrap" }, d.fingerprint)],
        ["anchored by", d.anchored_by ?? "—"],
        ["at height", d.height ?? "—"],
        ["time", when(d.timestamp_ms)],
        ["anchoring tx", d.tx_id ? link(`#/tx/${d.tx_id}`, hex(d.tx_id)) : "—"],
        ["verify", [verifyButton({ fact: "doc", type: d.type, id: d.fingerprint }, "verify document"), " ",
          d.tx_id ? verifyButton({ tx: d.tx_id }, "verify anchoring tx") : null]],
      ])),
    });
    edges.push({ from: id, to: "voucher" });
  });
  nodes.push({
    id: "voucher", layer: 1, kind: "voucher",
    lines: ["Confirmation", `${v.obligor} → ${v.beneficiary}`, `face ${amount(v.face)}`],
    title: `voucher ${v.id}`,
    data: { voucher: v.id, amount: v.face },
    detail: () => voucherFacts(v),
  });
  edges.push({ from: "voucher", to: lin.piece.piece });
  // pieces in depth-first order: children under their parent
  let dfs = 0;
  const visit = (p) => {
    nodes.push({
      id: p.piece, layer: 2 + p.depth, kind: "piece", order: dfs++, focus: p.piece === focusId,
      // a child's id starts with its voucher's lineage tag: its end tells pieces apart
      lines: [`piece …${p.piece.slice(-8)}`, amount(p.amount), `${p.holder} · ${p.state}`],
      title: `piece ${p.piece}\namount ${amount(p.amount)}\nholder ${p.holder}\n${p.state}`,
      data: { piece: p.piece, amount: p.amount ?? "", holder: p.holder, state: p.state },
      detail: () => pieceDetails(p, v.id),
    });
    for (const c of p.children) {
      const child = byId.get(c);
      if (child) {
        edges.push({ from: p.piece, to: c });
        visit(child);
      }
    }
  };
  visit(lin.piece);
  // holders of the pieces not split
  const holders = new Map();
  for (const p of pieces) {
    if (p.state === "SPLIT") continue;
    if (!holders.has(p.holder)) holders.set(p.holder, []);
    holders.get(p.holder).push(p);
    edges.push({ from: p.piece, to: `holder:${p.holder}` });
  }
  for (const [name, held] of holders) {
    nodes.push({
      id: `holder:${name}`, layer: layerHolders, kind: "holder",
      lines: ["holder", name, `${held.length} piece${held.length === 1 ? "" : "s"}`],
      title: `${name} holds ${held.map((p) => p.piece).join(", ")}`,
      data: { holder: name },
      detail: () => h("div", { class: "details" }, facts([
        ["holder", name],
        ["pieces", h("ul", {}, held.map((p) => h("li", {}, hex(p.piece), ` ${amount(p.amount)} ${p.state}`)))],
        ["verify", verifyButton(orgFact(name), "verify organization")],
      ])),
    });
  }
  lin.financings.forEach((f, i) => {
    const id = `fin:${i}`;
    nodes.push({
      id, layer: layerHolders + 1, kind: "financing",
      lines: [f.event, `${f.org} at ${f.height}`, f.price != null ? `price ${amount(f.price)}` : `amount ${amount(f.amount)}`],
      data: { piece: f.piece, event: f.event },
      detail: () => h("div", { class: "details" }, facts([
        ["financing", f.event],
        ["piece", link(`#/voucher/${f.piece}`, hex(f.piece))],
        ["by", f.org],
        ["height", link(`#/block/${f.height}`, f.height)],
        ["amount", amount(f.amount)],
        ["price", f.price != null ? amount(f.price) : "—"],
        ["verify", verifyButton({ fact: "piece", id: f.piece }, "verify piece record")],
      ])),
    });
    edges.push({ from: f.piece, to: id });
  });
  lin.clearing.forEach((r, i) => {
    const id = `clr:${i}`;
    nodes.push({
      id, layer: layerHolders + 2, kind: "settlement",
      lines: [`paid ${amount(r.amount)}`, `to ${r.paid_to}`, `batch ${r.batch} · height ${r.height}`],
      data: { piece: r.piece, amount: r.amount ?? "", batch: r.batch },
      detail: () => h("div", { class: "details" }, facts([
        ["settlement", `batch ${r.batch} at height ${r.height}`],
        ["piece", hex(r.piece)],
        ["paid to", r.paid_to],
        ["amount", amount(r.amount)],
        ["verify", verifyButton({ fact: "clearing", id: v.id, batch: r.batch }, "verify clearing list")],
      ])),
    });
    edges.push({ from: r.piece, to: id });
  });
  return layered({ nodes, edges, onSelect: select, label: `lineage of voucher ${v.id}` });
}

function voucherFacts(v) {
  return facts([
    ["voucher", h("code", { class: "wrap" }, v.id)],
    ["obligor", v.obligor, " ", verifyButton(orgFact(v.obligor), "verify obligor")],
    ["beneficiary", v.beneficiary],
    ["face", h("span", { class: "amount" }, amount(v.face))],
    ["maturity", when(v.maturity_ms)],
    ["confirmed at", link(`#/block/${v.confirmed_height}`, v.confirmed_height)],
    ["status", v.status],
    ["settled", amount(v.settled)],
    ["verify", verifyButton({ fact: "voucher", id: v.id }, "verify voucher")],
  ], { class: "facts voucher" });
}

export async function voucherPage(view, id) {
  view.append(idForm("voucher", "voucher or piece id", id));
  if (!id) return;
  const asked = await app("finance.lineage", { id });
  const lin = asked.voucher.id === id ? asked : await app("finance.lineage", { id: asked.voucher.id });
  const v = lin.voucher;
  const pieces = [lin.piece, ...lin.descendants];
  const detail = h("div", { id: "selected", class: "selected" }, h("p", { class: "hint" }, "select a node of the graph to see its facts and verify them"));
  const select = (node) => {
    detail.replaceChildren(node.detail ? node.detail() : h("p", {}, node.lines.join(" · ")));
    detail.dataset.node = node.id;
  };
  view.append(
    section(`Voucher ${short(v.id, 12)}`, voucherFacts(v)),
    section(
      "Lineage",
      h("div", { class: "graph-wrap" }, graphOf(lin, id, select)),
      detail,
    ),
    section(
      "Pieces",
      table(
        ["piece", "parent", "depth", "amount", "holder", "state", ""],
        pieces.map((p) =>
          h(
            "tr",
            { "data-piece": p.piece, class: p.piece === id ? "focus" : null },
            h("td", {}, h("code", { class: "piece-id" }, p.piece)),
            h("td", {}, p.parent ? hex(p.parent) : "root"),
            h("td", { class: "num" }, p.depth),
            h("td", { class: "num amount" }, amount(p.amount)),
            h("td", { class: "holder" }, p.holder),
            h("td", {}, p.state),
            h("td", {}, verifyButton({ fact: "piece", id: p.piece })),
          ),
        ),
        { class: "pieces" },
      ),
    ),
    section(
      "Trade documents",
      table(
        ["type", "fingerprint", "anchored by", "height", ""],
        v.documents.map((d) => [
          d.type, hex(d.fingerprint, 16), d.anchored_by ?? "—", d.height ?? "—",
          verifyButton({ fact: "doc", type: d.type, id: d.fingerprint }),
        ]),
        { class: "documents" },
      ),
    ),
    section(
      "Holders",
      table(["holder", ""], lin.holders.map((name) => [name, verifyButton(orgFact(name))]), { class: "holders" }),
    ),
    section(
      "Financings",
      table(
        ["piece", "event", "by", "height", "price", ""],
        lin.financings.map((f) => [
          hex(f.piece), f.event, f.org, link(`#/block/${f.height}`, f.height),
          f.price != null ? amount(f.price) : "—", verifyButton({ fact: "piece", id: f.piece }),
        ]),
        { class: "financings" },
      ),
    ),
    section(
      "Settlement",
      table(
        ["batch", "height", "piece", "paid to", "amount", ""],
        lin.clearing.map((r) => [
          r.batch, link(`#/block/${r.height}`, r.height), hex(r.piece), r.paid_to, amount(r.amount),
          verifyButton({ fact: "clearing", id: v.id, batch: r.batch }),
        ]),
        { class: "settlement" },
      ),
    ),
  );
}
