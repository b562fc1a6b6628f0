// Activity: the audit log, newest first, as sentences, each with its record one click away.
import { actLatest } from "../lib/core.js";
import { $, el, replaceKeepingFocus, table } from "../lib/dom.js";
import { date } from "../lib/format.js";

/** Long ids shortened (the full value is in the audit log file). */
function shortValue(v) {
  if (typeof v !== "string") return JSON.stringify(v);
  if (/^[0-9a-f-]{24,}$/.test(v)) return `${v.slice(0, 12)}…`;
  return v;
}

function describe(e) {
  const d = Object.assign({}, e);
  for (const k of ["ts", "tsMs", "action", "via", "credential", "expiresAtMs"]) delete d[k];
  return Object.entries(d)
    .map(([k, v]) => `${k} ${shortValue(v)}`)
    .join(" · ");
}

async function renderActivity() {
  const r = await actLatest("audit_tail", { limit: 500 });
  if (!r) return;
  const q = $("activity-search").value.trim().toLowerCase();
  const kind = $("activity-kind").value;
  const entries = (r.entries || [])
    .slice()
    .reverse()
    .filter((e) => !kind || e.action.startsWith(kind))
    .filter((e) => !q || JSON.stringify(e).toLowerCase().includes(q));
  const shown = entries.slice(0, 300);
  replaceKeepingFocus(
    $("activity-list"),
    entries.length
      ? [
          el(
            "div",
            { class: "table-wrap" },
            table(
              "table activity",
              `Activity, newest first (${shown.length} shown)`,
              ["When", "What happened"],
              shown.map((e) =>
                el(
                  "tr",
                  { class: e.action === "store.corrupt" ? "bad" : "" },
                  el("td", { class: "nowrap", text: date(e.tsMs) }),
                  el(
                    "td",
                    { class: "what" },
                    el("span", {
                      class: "sentence",
                      text: e.sentence || e.action + (describe(e) ? `: ${describe(e)}` : ""),
                    }),
                    // The record as it is in the log, one click away.
                    el(
                      "details",
                      { class: "record" },
                      el("summary", { text: "Record" }),
                      el("pre", { text: JSON.stringify(e, (k, v) => (k === "sentence" ? undefined : v), 2) }),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ]
      : [el("p", { class: "empty", text: "Nothing recorded yet." })],
  );
}

function wire() {
  $("activity-search").addEventListener("input", renderActivity);
  $("activity-kind").addEventListener("change", renderActivity);
}

export const view = {
  name: "activity",
  shortcut: "5",
  touches: /^(audit\.appended)/,
  render: renderActivity,
  wire,
};
