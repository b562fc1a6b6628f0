// Allowed senders, per channel and account: search, remove, add by hand.
import { act, actLatest } from "../lib/core.js";
import { $, confirmDialog, el, replaceKeepingFocus, table } from "../lib/dom.js";
import { ago, date, iso } from "../lib/format.js";

async function renderAllowlists() {
  const r = await actLatest("list_allowlist");
  if (!r) return;
  const q = $("allow-search").value.trim().toLowerCase();
  const entries = (r.entries || []).filter(
    (e) => !q || [e.channel, e.accountId, e.senderId, e.label, e.approvedVia].some((x) => x?.toLowerCase().includes(q)),
  );
  const groups = new Map();
  for (const e of entries) {
    const k = e.channel + (e.accountId === "default" ? "" : ` · ${e.accountId}`);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(e);
  }
  const out = [];
  for (const [k, list] of groups) {
    out.push(el("h2", { text: `${k} (${list.length})` }));
    out.push(
      el(
        "div",
        { class: "table-wrap" },
        table(
          "table",
          `Senders allowed on ${k}`,
          ["Sender", "Label", "Approved", "Via", "Last message", ""],
          list.map((e) =>
            el(
              "tr",
              { "data-sender": e.senderId },
              el("td", {}, el("code", { text: e.senderId })),
              el("td", { text: e.label || "—" }),
              el("td", { text: date(iso(e.approvedAt)) }),
              el("td", { text: e.approvedVia || "—" }),
              el("td", { text: e.lastMessageAt ? ago(iso(e.lastMessageAt)) : "—" }),
              el(
                "td",
                { class: "right" },
                e.readOnly
                  ? el("span", { class: "muted small", title: e.removeWith || "", text: "in OpenClaw" })
                  : el(
                      "button",
                      {
                        class: "small",
                        "data-action": "remove-sender",
                        "aria-label": `Remove ${e.senderId}${e.label ? ` (${e.label})` : ""} from ${k}`,
                        "data-focus-key": `remove-sender:${e.channel}:${e.accountId}:${e.senderId}`,
                        onclick: async () => {
                          if (
                            !(await confirmDialog(
                              `Remove ${e.senderId}?`,
                              "They will get a new pairing code the next time they write.",
                              "Remove",
                            ))
                          )
                            return;
                          if (
                            await act(
                              "allow_remove",
                              { channel: e.channel, senderId: e.senderId, accountId: e.accountId },
                              `Removed ${e.senderId}`,
                            )
                          )
                            renderAllowlists();
                        },
                      },
                      "Remove",
                    ),
              ),
            ),
          ),
        ),
      ),
    );
  }
  if (!out.length)
    out.push(
      el("p", {
        class: "empty",
        text: q
          ? `No sender matches \u201c${q}\u201d.`
          : "Nobody is allowed yet. Approve a request, or add a sender below.",
      }),
    );
  replaceKeepingFocus($("allow-groups"), out);
}

function wire() {
  $("allow-search").addEventListener("input", renderAllowlists);
  $("allow-add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const account = $("allow-add-account").value.trim() || null;
    const ok = await act(
      "allow_add",
      {
        channel: $("allow-add-channel").value.trim(),
        senderId: $("allow-add-sender").value.trim(),
        accountId: account,
      },
      `Allowed ${$("allow-add-sender").value.trim()}`,
    );
    if (ok) {
      $("allow-add-sender").value = "";
      renderAllowlists();
    }
  });
}

export const view = {
  name: "allowlists",
  shortcut: "2",
  touches: /^(allowlist\.|pairing\.resolved)/,
  render: renderAllowlists,
  wire,
};
