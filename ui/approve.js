// The small approval window: every request waiting, with Approve and Reject, for desktops
// whose notifications show no buttons. Closes itself when nothing waits.
import { invoke, tauri } from "./lib/core.js";
import { $, el } from "./lib/dom.js";
import { approvalContext, EXEC_LABELS, metaName } from "./lib/format.js";

function say(text) {
  $("approve-status").textContent = text;
}

async function decide(cmd, args, done) {
  try {
    await invoke(cmd, args);
    say(done);
  } catch (e) {
    say(e?.message || String(e));
  }
  await render();
}

function dmCard(r) {
  const name = `${metaName(r.meta) || r.id} on ${r.channel}`;
  return el(
    "article",
    { class: "card" },
    el(
      "div",
      { class: "card-main" },
      el("div", { class: "title" }, el("strong", { text: name })),
      el("div", { class: "line" }, "Code ", el("code", { class: "code", text: r.code })),
    ),
    el(
      "div",
      { class: "card-actions" },
      el(
        "button",
        {
          class: "primary",
          "data-action": "approve-dm",
          "aria-label": `Approve ${name}`,
          onclick: () => decide("approve_dm", { channel: r.channel, code: r.code, notify: false }, `Approved ${name}`),
        },
        "Approve",
      ),
      el(
        "button",
        {
          "data-action": "reject-dm",
          "aria-label": `Reject ${name}`,
          onclick: () => decide("reject_dm", { channel: r.channel, code: r.code }, `Rejected ${name}`),
        },
        "Reject",
      ),
    ),
  );
}

/**
 * Approve and Reject for a device's or a node's request; an ask that takes full access
 * (operator.admin) offers Review… (the main window) instead of Approve.
 */
function reviewOrApprove(kind, name, admin, requestId) {
  const button = (action, label, primary, onclick) =>
    el(
      "button",
      { class: primary ? "primary" : "", "data-action": action, "aria-label": `${label} ${name}`, onclick },
      label === "Review" ? "Review…" : label,
    );
  return el(
    "div",
    { class: "card-actions" },
    admin
      ? button(`review-${kind}`, "Review", true, () => invoke("open_main_window", { section: "requests" }))
      : button(`approve-${kind}`, "Approve", true, () => decide(`approve_${kind}`, { requestId }, `Approved ${name}`)),
    button(`reject-${kind}`, "Reject", false, () => decide(`reject_${kind}`, { requestId }, `Rejected ${name}`)),
  );
}

function deviceCard(r) {
  const name = `${r.name} (${r.role})`;
  const admin = (r.scopes || []).includes("operator.admin");
  return el(
    "article",
    { class: "card" },
    el(
      "div",
      { class: "card-main" },
      el("div", { class: "title" }, el("strong", { text: name })),
      el("div", { class: "line" }, "Fingerprint ", el("code", { class: "fingerprint", text: r.fingerprint })),
      admin
        ? el("div", { class: "warn", text: "Asks for full access (operator.admin): decided in the main window." })
        : null,
    ),
    reviewOrApprove("device", name, admin, r.requestId),
  );
}

function nodeCard(r) {
  const name = `${r.displayName || `node ${r.nodeId.slice(0, 12)}`} (node)`;
  const admin = (r.requiredApproveScopes || []).includes("operator.admin");
  const asks = [...(r.commands || []), ...(r.caps || [])].join(", ") || "nothing new";
  return el(
    "article",
    { class: "card" },
    el(
      "div",
      { class: "card-main" },
      el("div", { class: "title" }, el("strong", { text: name })),
      el("div", { class: "line", text: `Asks to expose ${asks}` }),
      admin
        ? el("div", {
            class: "warn",
            text: "Its commands take full access (operator.admin): decided in the main window.",
          })
        : null,
    ),
    reviewOrApprove("node", name, admin, r.requestId),
  );
}

function execCard(r) {
  return el(
    "article",
    { class: "card" },
    el(
      "div",
      { class: "card-main" },
      el(
        "div",
        { class: "title" },
        r.kind === "plugin" ? el("strong", { text: r.command }) : el("code", { text: r.command }),
      ),
      r.description ? el("div", { class: "line", text: r.description }) : null,
      el("div", { class: "line", text: approvalContext(r) }),
    ),
    el(
      "div",
      { class: "card-actions" },
      ...(r.allowedDecisions || ["allow-once", "deny"])
        .filter((d) => EXEC_LABELS[d])
        .map((d) =>
          el(
            "button",
            {
              class: d === "allow-once" ? "primary" : "",
              "data-action": `exec-${d}`,
              "aria-label": `${EXEC_LABELS[d]}: ${r.command}`,
              onclick: () => decide("resolve_exec", { id: r.id, decision: d }, `${EXEC_LABELS[d]}: ${r.command}`),
            },
            EXEC_LABELS[d],
          ),
        ),
    ),
  );
}

let rendering = null;

async function render() {
  if (rendering) return rendering;
  rendering = (async () => {
    let r;
    try {
      r = await invoke("list_requests");
    } catch (e) {
      say(e?.message || String(e));
      return;
    }
    const cards = [
      ...(r.dm || []).map(dmCard),
      ...(r.devices || []).map(deviceCard),
      ...(r.nodes || []).map(nodeCard),
      ...(r.execs || []).map(execCard),
    ];
    $("approve-list").replaceChildren(...cards);
    if (!cards.length) {
      say("Nothing is waiting.");
      await invoke("close_approval_window");
    }
  })();
  try {
    await rendering;
  } finally {
    rendering = null;
  }
}

async function start() {
  $("approve-open").addEventListener("click", () => invoke("open_main_window", { section: "requests" }));
  await tauri.event.listen("clawpair://event", (ev) => {
    const { event } = ev.payload || {};
    if (/^(pairing\.|device\.pair\.|node\.pair\.|exec\.approval\.)/.test(event || "")) render();
  });
  await render();
  $("main").focus();
}

start();
