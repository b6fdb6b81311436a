// A small renderer of this server's /openapi.json: every operation with its parameters, body
// and responses, the schemas written out with their $refs resolved. Nothing is loaded from
// anywhere but this server.

import { $, el, fill } from "./dom.js";

const METHODS = ["get", "post", "put", "patch", "delete"];
let spec;

function resolve(schema) {
  let s = schema;
  for (let depth = 0; s && s.$ref && depth < 20; depth++) {
    s = s.$ref.split("/").slice(1).reduce((node, key) => node && node[key], spec);
  }
  return s || {};
}

function refName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}

/** A schema as compact, readable text: {field: type, ...} with nested objects indented. */
function describe(schema, indent = "", seen = new Set()) {
  const name = refName(schema);
  const s = resolve(schema);
  if (name && seen.has(name)) return name;
  const here = name ? new Set([...seen, name]) : seen;
  const alts = s.anyOf || s.oneOf;
  if (alts) return alts.map((a) => describe(a, indent, here)).join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === "array") return `[${describe(s.items || {}, indent, here)}]`;
  if (s.type === "object" || s.properties) {
    const props = Object.entries(s.properties || {});
    if (!props.length) return "object";
    const required = new Set(s.required || []);
    const inner = indent + "  ";
    const lines = props.map(([key, value]) => {
      const v = resolve(value);
      const note = v.description || value.description;
      return `${inner}${key}${required.has(key) ? "" : "?"}: ${describe(value, inner, here)}${note ? `   // ${note}` : ""}`;
    });
    return `{\n${lines.join("\n")}\n${indent}}`;
  }
  const bounds = [];
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bounds.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined) bounds.push(`len ≥ ${s.minLength}`);
  if (s.maxLength !== undefined) bounds.push(`len ≤ ${s.maxLength}`);
  if (s.format) bounds.push(s.format);
  return `${s.type || "any"}${bounds.length ? ` (${bounds.join(", ")})` : ""}`;
}

function contentSchema(content) {
  if (!content) return null;
  const first = content["application/json"] || Object.values(content)[0];
  return first && first.schema;
}

function operation(path, method, op) {
  const params = [...(spec.paths[path].parameters || []), ...(op.parameters || [])].map((p) => (p.$ref ? resolve(p) : p));
  const body = op.requestBody && contentSchema(resolve(op.requestBody).content);
  const secured = (op.security || spec.security || []).some((s) => Object.keys(s).length);
  const responses = Object.entries(op.responses || {});
  return el(
    "details",
    { class: "op", dataset: { search: `${method} ${path} ${op.summary || ""} ${op.description || ""}`.toLowerCase() } },
    el(
      "summary",
      {},
      el("span", { class: `method ${method}` }, method),
      el("span", { class: "path" }, path),
      el("span", { class: "meta" }, op.summary || ""),
      secured && el("span", { class: "meta", title: "needs a bearer token" }, "🔒"),
    ),
    el(
      "div",
      { class: "body" },
      op.description && el("p", {}, op.description),
      params.length > 0 &&
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["name", "in", "type", "required"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, params.map((p) => el("tr", {}, el("td", {}, p.name), el("td", {}, p.in), el("td", {}, describe(p.schema || {})), el("td", {}, p.required ? "yes" : "no")))),
        ),
      body && [el("h4", {}, "Request body"), el("pre", { class: "schema" }, describe(body))],
      el("h4", {}, "Responses"),
      responses.map(([code, response]) => {
        const r = resolve(response);
        const schema = contentSchema(r.content);
        return el("div", {}, el("strong", {}, code), " ", r.description || "", schema && el("pre", { class: "schema" }, describe(schema)));
      }),
    ),
  );
}

function applyFilter() {
  const words = $("#filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const node of document.querySelectorAll("#ops .op")) {
    const match = words.every((w) => node.dataset.search.includes(w));
    node.hidden = !match;
    if (match) shown++;
  }
  for (const group of document.querySelectorAll("#ops section")) {
    group.hidden = !group.querySelector(".op:not([hidden])");
  }
  $("#count").textContent = `${shown} operation${shown === 1 ? "" : "s"}`;
}

async function start() {
  spec = await (await fetch("/openapi.json")).json();
  $("#title").textContent = `${spec.info.title} — API reference`;
  $("#intro").textContent = `OpenAPI ${spec.openapi}, version ${spec.info.version}. Send a bearer token (from POST /api/v1/auth/login) as "Authorization: Bearer …" where 🔒 is shown.`;
  const groups = new Map();
  for (const path of Object.keys(spec.paths).sort()) {
    const key = path.split("/").filter(Boolean).slice(path.startsWith("/api/v1/") ? 2 : 0, path.startsWith("/api/v1/") ? 3 : 1).join("/") || "/";
    if (!groups.has(key)) groups.set(key, []);
    for (const method of METHODS) {
      const op = spec.paths[path][method];
      if (op) groups.get(key).push(operation(path, method, op));
    }
  }
  fill(
    $("#ops"),
    [...groups].map(([key, ops]) => el("section", { "aria-label": key }, el("h2", {}, key), ops)),
  );
  applyFilter();
}

$("#filter").addEventListener("input", applyFilter);
$("#filter-form").addEventListener("submit", (e) => e.preventDefault());
start();
