// The explorer's router: hash routes to pages, one render at a time.

import { call } from "./api.js";
import { billPage } from "./bill.js";
import { blockPage, blocksPage, homePage, txPage } from "./blocks.js";
import { errorBox, h } from "./dom.js";
import { voucherPage } from "./lineage.js";
import { orgsPage } from "./orgs.js";
import { poolPage } from "./pool.js";

const ROUTES = [
  [/^$/, "home", () => homePage],
  [/^blocks(?:\/([0-9]{1,20}))?$/, "blocks", () => blocksPage],
  [/^block\/([0-9]{1,20})$/, "block", () => blockPage],
  [/^tx\/([0-9a-f]{64})$/, "tx", () => txPage],
  [/^orgs(?:\/([0-9a-f]{32}))?$/, "orgs", () => orgsPage],
  [/^voucher(?:\/([0-9a-f]{32}))?$/, "voucher", () => voucherPage],
  [/^bill(?:\/([0-9a-f]{32}))?$/, "bill", () => billPage],
  [/^pool(?:\/([0-9a-f]{32}))?$/, "pool", () => poolPage],
];

let rendering = 0;

async function render() {
  let path;
  try {
    path = decodeURIComponent(location.hash.replace(/^#\/?/, "")).toLowerCase();
  } catch {
    path = location.hash; // malformed escapes: no route matches it
  }
  const view = document.getElementById("view");
  const mine = ++rendering;
  const fresh = h("div", {});
  view.dataset.state = "loading";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("here", a.dataset.route === path.split("/")[0]);
  const route = ROUTES.find(([re]) => re.test(path));
  if (!route) {
    view.replaceChildren(errorBox({ code: "NOT_FOUND", detail: `no page ${path}` }));
    view.dataset.route = "none";
    view.dataset.state = "error";
    return;
  }
  const [re, name, page] = route;
  const arg = path.match(re)[1];
  view.dataset.route = name;
  view.replaceChildren(h("p", { class: "loading" }, "loading…"));
  try {
    await page()(fresh, arg);
    if (mine !== rendering) return; // a newer route is on its way
    view.replaceChildren(...fresh.childNodes);
    view.dataset.state = "ready";
  } catch (err) {
    if (mine !== rendering) return;
    view.replaceChildren(...fresh.childNodes, errorBox(err));
    view.dataset.state = "error";
  }
}

function search(text) {
  const q = text.trim().toLowerCase().replace(/^0x/, "");
  if (/^[0-9]{1,20}$/.test(q)) return `#/block/${q}`;
  if (/^[0-9a-f]{64}$/.test(q)) return `#/tx/${q}`;
  if (/^[0-9a-f]{32}$/.test(q)) return `#/voucher/${q}`;
  return null;
}

async function start() {
  document.getElementById("close-transcript").addEventListener("click", () => {
    document.getElementById("transcript").hidden = true;
  });
  const form = document.getElementById("search");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const target = search(form.elements.q.value);
    if (target) location.hash = target;
    else form.elements.q.setCustomValidity("a height, a tx id (64 hex) or a voucher / piece id (32 hex)");
    form.reportValidity();
  });
  form.elements.q.addEventListener("input", () => form.elements.q.setCustomValidity(""));
  window.addEventListener("hashchange", render);
  render();
  try {
    const info = await call("GetInfo");
    document.getElementById("chain").textContent = `chain ${info.chain_id} · ${info.suite}`;
    for (const a of document.querySelectorAll("nav a[data-endpoint]")) a.hidden = !info.endpoints.includes(a.dataset.endpoint);
  } catch (err) {
    document.getElementById("chain").textContent = `node: ${err.code || err.message}`;
  }
}

start();
