// Organizations (finance.orgs): name, roles, status and active keys, a page at a time.

import { app } from "./api.js";
import { h, hex, link, section, table, verifyButton } from "./dom.js";

const PAGE = 50;

export async function orgsPage(view, after) {
  const page = await app("finance.orgs", after ? { after, limit: PAGE } : { limit: PAGE });
  view.append(
    section(
      "Organizations",
      table(
        ["name", "id", "roles", "status", "admitted at", "active keys", ""],
        page.orgs.map((o) =>
          h(
            "tr",
            { "data-org": o.id, "data-name": o.name },
            h("td", { class: "name" }, o.name),
            h("td", {}, hex(o.id)),
            h("td", { class: "roles" }, o.roles.join(", ") || "none"),
            h("td", { class: o.status === "ACTIVE" ? "code ok" : "code bad" }, o.status),
            h("td", {}, link(`#/block/${o.admitted_height}`, o.admitted_height)),
            h(
              "td",
              {},
              h(
                "ul",
                { class: "keys" },
                o.keys.map((k) => h("li", {}, hex(k, 12), " ", verifyButton({ fact: "orgkey", id: k }, "verify key"))),
              ),
              o.keys.length === o.keys_active ? null : h("small", {}, `${o.keys_active} active by the record`),
            ),
            h("td", {}, verifyButton({ fact: "org", id: o.id })),
          ),
        ),
        { class: "orgs" },
      ),
      page.keys_complete ? null : h("p", { class: "note" }, "the key table is larger than one call reads: some keys may be missing"),
      h("p", { class: "paging" }, page.next ? link(`#/orgs/${page.next}`, "next page →") : null),
    ),
  );
}
