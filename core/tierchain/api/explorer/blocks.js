// Blocks and transactions: recent blocks (GetHead, GetBlock), a block's header and its
// transactions (GetTx: the decoded envelope and the receipt), one transaction.

import { b64ToBytes, b64ToHex, bytesText, bytesToHex, call, hexToB64, keyText } from "./api.js";
import { errorBox, facts, h, hex, link, section, table, verifyButton, when } from "./dom.js";

const RECENT = 20; // blocks a list shows
const TX_PAGE = 50; // transactions a block page decodes at a time

export async function blocksPage(view, from) {
  const head = await call("GetHead");
  const top = from === undefined ? Number(head.height) : Math.min(Number(from), Number(head.height));
  const heights = [];
  for (let x = top; x >= 0 && heights.length < RECENT; x--) heights.push(x);
  const blocks = await Promise.all(heights.map((height) => call("GetBlock", { height })));
  view.append(
    section(
      `Blocks ${heights.at(-1)}–${top} (head ${head.height})`,
      table(
        ["height", "time", "txs", "hash", "proposer", ""],
        blocks.map((b) => {
          const hd = b.header;
          return h(
            "tr",
            { "data-height": hd.height },
            h("td", {}, link(`#/block/${hd.height}`, hd.height)),
            h("td", {}, when(hd.timestamp_ms)),
            h("td", { class: "num" }, hd.tx_count),
            h("td", {}, hex(b64ToHex(hd.hash))),
            h("td", {}, hex(b64ToHex(hd.proposer))),
            h("td", {}, verifyButton({ height: hd.height })),
          );
        }),
        { class: "blocks" },
      ),
      h(
        "p",
        { class: "paging" },
        top < Number(head.height) ? link(`#/blocks/${Math.min(Number(head.height), top + RECENT)}`, "← newer") : null,
        " ",
        heights.at(-1) > 0 ? link(`#/blocks/${heights.at(-1) - 1}`, "older →") : null,
      ),
    ),
  );
}

export async function blockPage(view, height) {
  const b = await call("GetBlock", { height });
  const hd = b.header;
  const n = Number(hd.height);
  view.append(
    section(
      `Block ${hd.height}`,
      facts([
        ["height", hd.height],
        ["hash", h("code", { class: "wrap" }, b64ToHex(hd.hash))],
        ["previous", n > 0 ? link(`#/block/${n - 1}`, h("code", { class: "wrap" }, b64ToHex(hd.prev_hash))) : "—"],
        ["time", when(hd.timestamp_ms)],
        ["transactions", hd.tx_count],
        ["tx root", h("code", { class: "wrap" }, b64ToHex(hd.tx_root))],
        ["receipt root", h("code", { class: "wrap" }, b64ToHex(hd.receipt_root))],
        ["state root", h("code", { class: "wrap" }, b64ToHex(hd.state_root))],
        ["proposer", h("code", { class: "wrap" }, b64ToHex(hd.proposer))],
        ["signature", h("code", { class: "wrap" }, b64ToHex(hd.signature))],
        ["chain", `${hd.chain_id} (${hd.suite})`],
        ["verify", verifyButton({ height: hd.height }, "verify header")],
      ], { class: "facts header" }),
    ),
  );
  const rows = h("tbody", {});
  const txs = section(
    `Transactions (${b.tx_ids.length})`,
    h(
      "table",
      { class: "txs" },
      h("thead", {}, h("tr", {}, ["#", "tx id", "op", "sender", "nonce", "receipt", "events", ""].map((x) => h("th", {}, x)))),
      rows,
    ),
  );
  view.append(txs);
  const more = h("button", { type: "button", class: "more" }, "more transactions");
  let shown = 0;
  const page = async () => {
    const ids = b.tx_ids.slice(shown, shown + TX_PAGE);
    const records = await Promise.all(ids.map((id) => call("GetTx", { tx_id: id })));
    records.forEach((r, i) => {
      const d = r.decoded;
      const id = b64ToHex(ids[i]);
      rows.append(
        h(
          "tr",
          { "data-tx": id },
          h("td", { class: "num" }, r.position),
          h("td", {}, link(`#/tx/${id}`, hex(id))),
          h("td", { class: "op" }, d.op_name),
          h("td", {}, hex(b64ToHex(d.sender))),
          h("td", { class: "num" }, d.nonce),
          h("td", { class: r.receipt.code === "OK" ? "code ok" : "code bad" }, r.receipt.code),
          h("td", { class: "num" }, r.receipt.events.length),
          h("td", {}, verifyButton({ tx: id })),
        ),
      );
    });
    shown += ids.length;
    more.hidden = shown >= b.tx_ids.length;
  };
  more.addEventListener("click", () => page().catch((err) => txs.append(errorBox(err))));
  txs.append(more);
  await page();
}

function keyList(keys) {
  if (!keys.length) return "none";
  return h(
    "ul",
    { class: "keys" },
    keys.map((k) => {
      const bytes = b64ToBytes(k);
      return h("li", {}, h("code", { class: "wrap" }, keyText(bytes)), " ", verifyButton({ key: bytesToHex(bytes) }, "verify value"));
    }),
  );
}

export async function txPage(view, id) {
  const r = await call("GetTx", { tx_id: hexToB64(id) });
  const d = r.decoded;
  const payload = b64ToHex(d.payload);
  view.append(
    section(
      `Transaction ${id.slice(0, 16)}…`,
      facts([
        ["tx id", h("code", { class: "wrap" }, id)],
        ["block", link(`#/block/${r.height}`, r.height)],
        ["position", r.position],
        ["op", h("span", { class: "op", "data-op": d.op }, d.op_name), ` (op ${d.op})`],
        ["sender", h("code", { class: "wrap" }, b64ToHex(d.sender))],
        ["nonce", d.nonce],
        ["chain", d.chain_id],
        ["expires at", d.expires_at === "0" ? "never" : when(d.expires_at)],
        ["reads", keyList(d.reads)],
        ["writes", keyList(d.writes)],
        ["payload", h("code", { class: "wrap payload", title: `${payload.length / 2} bytes` }, payload || "(empty)")],
        ["verify", verifyButton({ tx: id }, "verify inclusion")],
      ], { class: "facts tx" }),
    ),
    section(
      "Receipt",
      facts([
        ["code", h("span", { class: r.receipt.code === "OK" ? "code ok" : "code bad" }, r.receipt.code), ` (${r.receipt.code_number})`],
        ["committed at", link(`#/block/${r.receipt.height}`, r.receipt.height)],
      ], { class: "facts receipt" }),
      table(
        ["topic", "data"],
        r.receipt.events.map((e) => [h("code", {}, bytesText(b64ToBytes(e.topic))), h("code", { class: "wrap" }, b64ToHex(e.data))]),
        { class: "events" },
      ),
    ),
  );
}

export async function homePage(view) {
  const info = await call("GetInfo");
  view.append(
    section(
      "This node",
      facts([
        ["chain", `${info.chain_id} (${info.suite})`],
        ["apps", info.apps.join(", ")],
        ["endpoints", info.endpoints.join(", ") || "none"],
        ["signed calls", info.auth_required ? "required" : "not required"],
      ], { class: "facts info" }),
    ),
  );
  await blocksPage(view);
}
