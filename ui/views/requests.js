// Requests: chat senders and devices waiting for the owner, each with Approve and Reject that
// name what they act on; new ones are announced.
import { act, actLatest } from "../lib/core.js";
import { $, announce, el, gatewayChip, replaceKeepingFocus } from "../lib/dom.js";
import { ago, approvalContext, EXEC_LABELS, iso, metaName, until } from "../lib/format.js";
import { state } from "../lib/state.js";

// Requests already seen (null until the first list), so only new ones are announced.
let knownRequests = null;

/** Who sent a DM request, as the buttons name them: "@dave on telegram". */
function dmSubject(r) {
  return `${metaName(r.meta) || r.id} on ${r.channel}${r.accountId !== "default" ? ` (account ${r.accountId})` : ""}`;
}

/** Which device asks, as the buttons name it: "Pixel 9 Pro (node)". */
function deviceSubject(r) {
  return `${r.name} (${r.role})`;
}

function dmCard(r) {
  const key = `${r.channel}:${r.accountId}:${r.code}`;
  const subject = dmSubject(r);
  // Only a channel that can send says "you are approved": the built-in Telegram bot when it
  // is set up (a bridge for another channel sends its own).
  const noBot = !state.status?.attach && r.channel === "telegram" && !state.status?.telegram?.configured;
  const notifyWhy = noBot ? "No Telegram bot is set up (Settings → Telegram bot), so the sender cannot be told" : "";
  const notify = el("input", {
    type: "checkbox",
    id: `notify-${r.channel}-${r.code}`,
    "aria-label": `Notify sender: ${subject}${noBot ? ` (unavailable: ${notifyWhy})` : ""}`,
    "data-focus-key": `notify-dm:${key}`,
    disabled: noBot,
    title: notifyWhy || null,
  });
  const name = metaName(r.meta);
  return el(
    "article",
    { class: "card", "data-code": r.code, "data-channel": r.channel },
    el(
      "div",
      { class: "card-main" },
      el(
        "div",
        { class: "title" },
        gatewayChip(r),
        el("span", { class: "chip", text: r.channel }),
        " ",
        el("strong", { text: name || r.id }),
        name ? el("span", { class: "muted", text: ` · id ${r.id}` }) : null,
      ),
      // Attached to OpenClaw, requests are named by its request id (its protocol does not
      // show the code the sender got).
      state.status?.attach
        ? el("div", { class: "line muted small", text: `OpenClaw request ${r.code.slice(0, 10)}…` })
        : el(
            "div",
            { class: "line" },
            "Code ",
            el("code", { class: "code", text: r.code }),
            r.accountId !== "default" ? el("span", { class: "muted", text: ` · account ${r.accountId}` }) : null,
          ),
      el("div", {
        class: "muted small",
        text: `Requested ${ago(iso(r.createdAt))} · last message ${ago(iso(r.lastSeenAt))} · expires ${until(iso(r.expiresAt))}`,
      }),
      r.invalidName
        ? el("div", {
            class: "line warn",
            text: "Its pairing file names an account that is not a valid name, so it cannot be approved: reject it, or correct the file.",
          })
        : null,
    ),
    el(
      "div",
      { class: "card-actions" },
      el(
        "label",
        { class: `check small${noBot ? " muted" : ""}`, title: notifyWhy || null },
        notify,
        noBot ? "Notify sender (no bot set up)" : "Notify sender",
      ),
      el(
        "button",
        {
          class: "primary",
          "data-action": "approve-dm",
          "aria-label": `Approve ${subject}`,
          "data-focus-key": `approve-dm:${key}`,
          disabled: !!r.invalidName,
          onclick: async () => {
            const res = await act(
              "approve_dm",
              { channel: r.channel, code: r.code, notify: notify.checked },
              `Approved ${name || r.id}`,
            );
            if (res) renderRequests();
          },
        },
        "Approve",
      ),
      el(
        "button",
        {
          "data-action": "reject-dm",
          "aria-label": `Reject ${subject}`,
          "data-focus-key": `reject-dm:${key}`,
          onclick: async () => {
            const res = await act("reject_dm", { channel: r.channel, code: r.code }, `Rejected ${name || r.id}`);
            if (res) renderRequests();
          },
        },
        "Reject",
      ),
    ),
  );
}

function deviceCard(r) {
  const name = r.name;
  const admin = (r.scopes || []).includes("operator.admin");
  const subject = deviceSubject(r);
  const approve = (withoutAdmin, label) =>
    el(
      "button",
      {
        class: withoutAdmin || !admin ? "primary" : "",
        "data-action": admin ? (withoutAdmin ? "approve-device-limited" : "approve-device-full") : "approve-device",
        "aria-label": label + (admin ? ": " : " ") + subject,
        "data-focus-key": `approve-device:${withoutAdmin}:${r.requestId}`,
        onclick: async () => {
          const res = await act(
            "approve_device",
            { requestId: r.requestId, withoutAdmin },
            `Approved ${name}${withoutAdmin ? " without admin" : ""}`,
          );
          if (res) renderRequests();
        },
      },
      label,
    );
  return el(
    "article",
    { class: "card", "data-request": r.requestId },
    el(
      "div",
      { class: "card-main" },
      el(
        "div",
        { class: "title" },
        gatewayChip(r),
        el("span", { class: "chip", text: r.kind || "new device" }),
        " ",
        el("strong", { text: name }),
        el("span", {
          class: "muted",
          text: [r.platform, r.remoteIp]
            .filter(Boolean)
            .map((x) => ` · ${x}`)
            .join(""),
        }),
      ),
      el("div", { class: "line" }, "Fingerprint ", el("code", { class: "fingerprint", text: r.fingerprint })),
      admin
        ? el("div", {
            class: "line warn",
            text: "Asks for full access (operator.admin): it could approve other devices and change settings.",
          })
        : null,
      el("div", {
        class: "muted small",
        text:
          "Role " +
          r.role +
          (r.scopes?.length ? ` (${r.scopes.join(", ")})` : "") +
          " · " +
          (r.reason || "") +
          " · requested " +
          ago(r.ts) +
          " · expires " +
          until(r.expiresAtMs),
      }),
    ),
    el(
      "div",
      { class: "card-actions" },
      admin ? approve(true, "Approve without admin") : null,
      approve(false, admin ? "Approve full access" : "Approve"),
      el(
        "button",
        {
          "data-action": "reject-device",
          "aria-label": `Reject ${subject}`,
          "data-focus-key": `reject-device:${r.requestId}`,
          onclick: async () => {
            const res = await act("reject_device", { requestId: r.requestId }, `Rejected ${name}`);
            if (res) renderRequests();
          },
        },
        "Reject",
      ),
    ),
  );
}

/** What a node asks to expose, in one line. */
function nodeAsks(r) {
  const parts = [];
  if ((r.commands || []).length) parts.push(`commands ${r.commands.join(", ")}`);
  if ((r.caps || []).length) parts.push(`capabilities ${r.caps.join(", ")}`);
  const granted = Object.entries(r.permissions || {})
    .filter(([, v]) => v === true)
    .map(([k]) => k);
  if (granted.length) parts.push(`permissions ${granted.join(", ")}`);
  return parts.length ? parts.join("; ") : "nothing new to expose";
}

/** Which node asks, as the buttons name it: "Build box (node)". */
function nodeSubject(r) {
  return `${r.displayName || `node ${r.nodeId.slice(0, 12)}`} (node)`;
}

function nodeCard(r) {
  const name = r.displayName || `node ${r.nodeId.slice(0, 12)}`;
  const subject = nodeSubject(r);
  const admin = (r.requiredApproveScopes || []).includes("operator.admin");
  const decide = (cmd, label, done) =>
    el(
      "button",
      {
        class: cmd === "approve_node" ? "primary" : "",
        "data-action": cmd === "approve_node" ? "approve-node" : "reject-node",
        "aria-label": `${label} ${subject}`,
        "data-focus-key": `${cmd}:${r.requestId}`,
        onclick: async () => {
          const res = await act(cmd, { requestId: r.requestId }, `${done} ${name}`);
          if (res) renderRequests();
        },
      },
      label,
    );
  return el(
    "article",
    { class: "card", "data-node-request": r.requestId },
    el(
      "div",
      { class: "card-main" },
      el(
        "div",
        { class: "title" },
        gatewayChip(r),
        el("span", { class: "chip", text: "node" }),
        " ",
        el("strong", { text: name }),
        el("span", {
          class: "muted",
          text: [r.platform, r.version]
            .filter(Boolean)
            .map((x) => ` · ${x}`)
            .join(""),
        }),
      ),
      el("div", { class: "line", text: `Asks to expose ${nodeAsks(r)}` }),
      admin
        ? el("div", {
            class: "line warn",
            text: "Approving takes full access (operator.admin): these commands can run programs on that machine.",
          })
        : null,
      el("div", { class: "muted small", text: `Requested ${ago(r.ts)} · waits until you decide` }),
    ),
    el(
      "div",
      { class: "card-actions" },
      decide("approve_node", "Approve", "Approved"),
      decide("reject_node", "Reject", "Rejected"),
    ),
  );
}

function execCard(r) {
  const decide = (decision) =>
    el(
      "button",
      {
        class: decision === "allow-once" ? "primary" : decision === "deny" ? "danger" : "",
        "data-action": `exec-${decision}`,
        "aria-label": `${EXEC_LABELS[decision]}: ${r.command}`,
        "data-focus-key": `exec:${decision}:${r.id}`,
        onclick: async () => {
          const res = await act("resolve_exec", { id: r.id, decision }, `${EXEC_LABELS[decision]}: ${r.command}`);
          if (res) renderRequests();
        },
      },
      EXEC_LABELS[decision],
    );
  return el(
    "article",
    { class: "card", "data-exec": r.id },
    el(
      "div",
      { class: "card-main" },
      el(
        "div",
        { class: "title" },
        gatewayChip(r),
        ...(r.kind === "plugin"
          ? [el("span", { class: "chip", text: "plugin" }), " ", el("strong", { text: r.command })]
          : [el("span", { class: "chip", text: "command" }), " ", el("code", { text: r.command })]),
      ),
      r.description ? el("div", { class: "line", text: r.description }) : null,
      el("div", { class: "line", text: approvalContext(r) }),
      ...(r.warnings || []).map((w) => el("div", { class: "line warn", text: w })),
      el("div", { class: "muted small", text: `Asked ${ago(r.createdAtMs)} · expires ${until(r.expiresAtMs)}` }),
    ),
    el(
      "div",
      { class: "card-actions" },
      ...(r.allowedDecisions || ["allow-once", "deny"]).filter((d) => EXEC_LABELS[d]).map(decide),
    ),
  );
}

async function renderRequests() {
  const r = await actLatest("list_requests");
  if (!r) return;
  const dm = r.dm || [];
  const dev = r.devices || [];
  $("dm-count").textContent = dm.length ? `(${dm.length})` : "";
  $("device-count").textContent = dev.length ? `(${dev.length})` : "";
  noteRequests(r);
  replaceKeepingFocus(
    $("dm-list"),
    dm.length ? dm.map(dmCard) : [el("p", { class: "empty", text: "No chat senders are waiting." })],
  );
  replaceKeepingFocus(
    $("device-list"),
    dev.length ? dev.map(deviceCard) : [el("p", { class: "empty", text: "No devices are waiting." })],
  );
  // Node capability requests come only from an attached OpenClaw.
  const nodes = r.nodes || [];
  const showNodes = nodes.length > 0 || !!state.status?.attach;
  $("node-heading").hidden = !showNodes;
  $("node-list").hidden = !showNodes;
  $("node-count").textContent = nodes.length ? `(${nodes.length})` : "";
  replaceKeepingFocus(
    $("node-list"),
    nodes.length ? nodes.map(nodeCard) : [el("p", { class: "empty", text: "No nodes are asking for new commands." })],
  );
  // Exec approvals come only from an attached OpenClaw.
  const execs = r.execs || [];
  const showExecs = execs.length > 0 || !!state.status?.attach;
  $("exec-heading").hidden = !showExecs;
  $("exec-list").hidden = !showExecs;
  $("exec-count").textContent = execs.length ? `(${execs.length})` : "";
  replaceKeepingFocus(
    $("exec-list"),
    execs.length ? execs.map(execCard) : [el("p", { class: "empty", text: "No agent is waiting for an answer." })],
  );
  $("drop-note").hidden = !state.drops;
  $("drop-note").textContent =
    `${state.drops} more sender${state.drops === 1 ? " was" : "s were"} ignored because three requests were already waiting.`;
}

/** Announces the requests that were not in the last list (none on the first). */
function noteRequests(r) {
  const fresh = [];
  const seen = new Set();
  for (const d of r.dm || []) {
    const k = `dm:${d.channel}:${d.accountId}:${d.code}`;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k)) fresh.push(`New chat sender waiting: ${dmSubject(d)}`);
  }
  for (const d of r.devices || []) {
    const k = `device:${d.requestId}`;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k))
      fresh.push(`New device waiting: ${deviceSubject(d)}${d.platform ? `, ${d.platform}` : ""}`);
  }
  for (const d of r.nodes || []) {
    const k = `node:${d.requestId}`;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k)) fresh.push(`Node asking for new commands: ${nodeSubject(d)}`);
  }
  for (const d of r.execs || []) {
    const k = `exec:${d.id}`;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k))
      fresh.push(d.kind === "plugin" ? `A plugin asks: ${d.command}` : `An agent asks to run: ${d.command}`);
  }
  knownRequests = seen;
  for (const m of fresh) announce(m);
}

/** Lists the requests only to announce what is new (when another view is showing). */
export async function watchRequests() {
  const r = await actLatest("list_requests");
  if (r) noteRequests(r);
}

export const view = {
  name: "requests",
  shortcut: "1",
  touches: /^(pairing\.|device\.pair\.|node\.pair\.|exec\.approval\.|settings\.)/,
  render: renderRequests,
};
