// An ABS pool's statistics (abs.pool): the pool, its exact figures, its members.

import { app } from "./api.js";
import { amount, facts, h, hex, section, table, verifyButton, when } from "./dom.js";
import { idForm } from "./lineage.js";

// A figure of stats.PoolStats: a count or an amount, or an exact fraction ({fraction, bp:
// its value in basis points, rounded down}): a ratio shown as a percentage, a weighted
// average (wa_*) as its value.
const AVERAGES = { wa_rate_bp: "bp", wa_remaining_months: "months" };

function figure(name, value) {
  if (value && typeof value === "object" && "bp" in value) {
    const bp = Number(value.bp);
    const shown = name in AVERAGES ? `${(bp / 10000).toFixed(2)} ${AVERAGES[name]}` : `${(bp / 100).toFixed(2)}%`;
    return h("span", { title: value.fraction }, shown);
  }
  return amount(value);
}

export async function poolPage(view, id) {
  view.append(idForm("pool", "pool id", id));
  if (!id) return;
  const answer = await app("abs.pool", { id });
  const p = answer.pool;
  view.append(
    section(
      `Pool ${p.name}`,
      facts([
        ["pool", h("code", { class: "wrap" }, p.id)],
        ["originator", p.originator_name || p.originator],
        ["trustee", p.trustee_name || p.trustee || "—"],
        ["status", p.status],
        ["assets", p.assets],
        ["cut-off balance", amount(p.cutoff_balance)],
        ["created", `${when(p.created_ms)} (height ${p.created_height})`],
        ["criteria", Object.entries(p.criteria).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join("/") : v}`).join(", ")],
        ["verify", verifyButton({ fact: "pool", id: p.id }, "verify pool")],
      ], { class: "facts pool" }),
    ),
    section(
      "Statistics",
      table(["figure", "value"], Object.entries(answer.stats).map(([k, v]) => [k.replaceAll("_", " "), figure(k, v)]), { class: "stats" }),
      h("p", { class: "note" }, "computed by the node from the members' asset records; verify those below"),
    ),
    section(
      `Members (${answer.members.length} of ${answer.members_total})`,
      table(["asset", "kind", "status", "principal", "outstanding", "cut-off balance", ""],
        answer.members.map((m) => [hex(m.asset), m.kind, m.status, amount(m.principal), amount(m.outstanding),
          amount(m.cutoff_balance), verifyButton({ fact: "asset", id: m.asset })]),
        { class: "members" }),
    ),
  );
}
