// A bill's endorsement chain (bills.lineage): drawer -> payee -> each endorsee, with its
// holders, financing, payments and history; the bill record and each event's tx verifiable.

import { app } from "./api.js";
import { amount, facts, h, hex, link, section, table, verifyButton } from "./dom.js";
import { layered } from "./graph.js";
import { idForm } from "./lineage.js";

const who = (ref) => (ref ? ref.name || ref.id : "—");

export async function billPage(view, id) {
  view.append(idForm("bill", "bill id", id));
  if (!id) return;
  const b = await app("bills.lineage", { id });
  const nodes = [
    { id: "drawer", layer: 0, kind: "voucher", lines: ["drawer", who(b.drawer), `face ${amount(b.face)}`], data: { org: who(b.drawer) } },
  ];
  const edges = [];
  let last = "drawer";
  b.endorsements.forEach((e, i) => {
    const nid = `end:${i}`;
    nodes.push({
      id: nid, layer: i + 1, kind: "holder",
      lines: [`${e.index}. ${e.kind}`, who(e.to), `height ${e.height}${e.price ? ` · ${amount(e.price)}` : ""}`],
      data: { org: who(e.to), index: e.index },
    });
    edges.push({ from: last, to: nid });
    last = nid;
  });
  view.append(
    section(
      `Bill ${b.bill.slice(0, 12)}…`,
      facts([
        ["bill", h("code", { class: "wrap" }, b.bill)],
        ["kind", b.kind],
        ["drawer", who(b.drawer)],
        ["acceptor", who(b.acceptor)],
        ["payee", who(b.payee)],
        ["face", amount(b.face)],
        ["issued", `${b.issued} (height ${b.issue_height})`],
        ["maturity / due", `${b.maturity} / ${b.due}`],
        ["state", b.state],
        ["holder", who(b.holder)],
        ["not transferable", b.not_transferable ? "yes" : "no"],
        ["verify", verifyButton({ fact: "bill", id: b.bill }, "verify bill")],
      ], { class: "facts bill" }),
    ),
    section("Endorsement chain", h("div", { class: "graph-wrap" }, layered({ nodes, edges, label: `endorsements of bill ${b.bill}` }))),
    section(
      "Endorsements",
      table(
        ["#", "kind", "from", "to", "height", "price", "restrictive", ""],
        b.endorsements.map((e) => [e.index, e.kind, who(e.from), who(e.to), link(`#/block/${e.height}`, e.height),
          amount(e.price), e.restrictive ? "yes" : "no", verifyButton({ fact: "bill", id: b.bill }, "verify bill record")]),
        { class: "endorsements" },
      ),
    ),
    section(
      "Holders",
      table(["holder", "from height", "until height", "how"],
        b.holders.map((x) => [who(x.holder), x.from_height, x.until_height ?? "now", x.how]), { class: "holders" }),
    ),
    section(
      "Financing and payments",
      table(["kind", "by", "to", "amount", "height", ""],
        [...b.financing.map((f) => [f.kind, who(f.actor), who(f.party), amount(f.amount), f.height, verifyButton({ tx: f.tx_id })]),
          ...b.payments.map((p) => [p.kind, who(p.by), who(p.to), amount(p.amount), p.height, verifyButton({ tx: p.tx_id })])],
        { class: "payments" }),
    ),
    section(
      "History",
      table(["event", "height", "time", "actor", "party", "amount", "tx", ""],
        b.history.map((e) => [e.event, link(`#/block/${e.height}`, e.height), e.time, who(e.actor), who(e.party), amount(e.amount),
          link(`#/tx/${e.tx_id}`, hex(e.tx_id)), verifyButton({ tx: e.tx_id })]),
        { class: "history" }),
    ),
  );
}
