// A layered graph drawn as SVG: nodes in columns (layers) left to right, edges as curves.
//
// layered({nodes, edges, onSelect}) -> <svg>. A node is {id, layer, lines: [title, ...],
// kind, title (tooltip), data: {name: value} (as data-* attributes), order (optional)}; an
// edge is {from, to}. Within a layer nodes are ordered by their `order` if given, else by
// the mean position of the nodes with edges into them (barycentre), else as given; each
// layer is centred on the tallest one.

import { s } from "./dom.js";

export const NODE_W = 164;
export const NODE_H = 62;
const GAP_X = 38;
const GAP_Y = 16;
const PAD = 16;
const LINE_CHARS = 24;

function clip(text) {
  const t = String(text ?? "");
  return t.length > LINE_CHARS ? t.slice(0, LINE_CHARS - 1) + "…" : t;
}

export function layout(nodes, edges) {
  const layers = new Map();
  for (const n of nodes) {
    if (!layers.has(n.layer)) layers.set(n.layer, []);
    layers.get(n.layer).push(n);
  }
  const order = [...layers.keys()].sort((a, b) => a - b);
  const tallest = Math.max(1, ...[...layers.values()].map((l) => l.length));
  const height = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const into = new Map();
  for (const e of edges) {
    if (!into.has(e.to)) into.set(e.to, []);
    into.get(e.to).push(e.from);
  }
  const pos = new Map();
  order.forEach((layer, column) => {
    const members = layers.get(layer).map((n, i) => {
      const ys = (into.get(n.id) || []).map((id) => pos.get(id)).filter(Boolean).map((p) => p.y);
      const bary = ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
      return { n, key: n.order ?? bary, i };
    });
    members.sort((a, b) => (a.key === b.key ? a.i - b.i : a.key < b.key ? -1 : 1));
    const span = members.length * NODE_H + (members.length - 1) * GAP_Y;
    const top = PAD + (height - span) / 2;
    members.forEach(({ n }, i) => {
      pos.set(n.id, { x: PAD + column * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) });
    });
  });
  return {
    pos,
    width: 2 * PAD + order.length * NODE_W + Math.max(0, order.length - 1) * GAP_X,
    height: 2 * PAD + height,
  };
}

export function layered({ nodes, edges, onSelect, label }) {
  const { pos, width, height } = layout(nodes, edges);
  const svg = s("svg", {
    class: "graph",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": label || "graph",
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
      ),
    ),
  );
  const edgeLayer = s("g", { class: "edges" });
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    edgeLayer.append(
      s("path", {
        class: "edge",
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
        "marker-end": "url(#arrow)",
        "data-from": e.from,
        "data-to": e.to,
      }),
    );
  }
  svg.append(edgeLayer);
  const nodeLayer = s("g", { class: "nodes" });
  for (const n of nodes) {
    const p = pos.get(n.id);
    const data = Object.fromEntries(
      Object.entries(n.data || {}).map(([k, v]) => [`data-${k}`, v === null || v === undefined ? "" : String(v)]),
    );
    const g = s(
      "g",
      {
        class: `node kind-${n.kind}${n.focus ? " focus" : ""}`,
        transform: `translate(${p.x},${p.y})`,
        tabindex: 0,
        role: "button",
        "data-node": n.id,
        "data-kind": n.kind,
        ...data,
      },
      s("title", {}, n.title || n.lines.join("\n")),
      s("rect", { width: NODE_W, height: NODE_H, rx: 7, ry: 7 }),
      n.lines.map((line, i) => s("text", { x: 10, y: 19 + i * 17, class: i ? "line" : "head" }, clip(line))),
    );
    if (onSelect) {
      const select = () => {
        for (const other of svg.querySelectorAll(".node.selected")) other.classList.remove("selected");
        g.classList.add("selected");
        onSelect(n);
      };
      g.addEventListener("click", select);
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          select();
        }
      });
    }
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
  return svg;
}
