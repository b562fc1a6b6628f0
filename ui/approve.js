// The small approval window: every request waiting, with Approve and Reject, for desktops
// whose notifications show no buttons. Closes itself when nothing waits.
import { invoke, tauri } from "./lib/core.js";
import { $, el } from "./lib/dom.js";
import { metaName } from "./lib/format.js";

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
    el(
      "div",
      { class: "card-actions" },
      admin
        ? el(
            "button",
            {
              class: "primary",
              "data-action": "review-device",
              "aria-label": `Review ${name}`,
              onclick: () => invoke("open_main_window", { section: "requests" }),
            },
            "Review…",
          )
        : el(
            "button",
            {
              class: "primary",
              "data-action": "approve-device",
              "aria-label": `Approve ${name}`,
              onclick: () => decide("approve_device", { requestId: r.requestId }, `Approved ${name}`),
            },
            "Approve",
          ),
      el(
        "button",
        {
          "data-action": "reject-device",
          "aria-label": `Reject ${name}`,
          onclick: () => decide("reject_device", { requestId: r.requestId }, `Rejected ${name}`),
        },
        "Reject",
      ),
    ),
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
    el(
      "div",
      { class: "card-actions" },
      admin
        ? el(
            "button",
            {
              class: "primary",
              "data-action": "review-node",
              "aria-label": `Review ${name}`,
              onclick: () => invoke("open_main_window", { section: "requests" }),
            },
            "Review…",
          )
        : el(
            "button",
            {
              class: "primary",
              "data-action": "approve-node",
              "aria-label": `Approve ${name}`,
              onclick: () => decide("approve_node", { requestId: r.requestId }, `Approved ${name}`),
            },
            "Approve",
          ),
      el(
        "button",
        {
          "data-action": "reject-node",
          "aria-label": `Reject ${name}`,
          onclick: () => decide("reject_node", { requestId: r.requestId }, `Rejected ${name}`),
        },
        "Reject",
      ),
    ),
  );
}

const EXEC_LABELS = { "allow-once": "Allow once", "allow-always": "Always allow", deny: "Deny" };

function execCard(r) {
  return el(
    "article",
    { class: "card" },
    el(
      "div",
      { class: "card-main" },
      el("div", { class: "title" }, el("code", { text: r.command })),
      el("div", {
        class: "line",
        text: [r.cwd && `in ${r.cwd}`, r.agentId && `agent ${r.agentId}`].filter(Boolean).join(" · "),
      }),
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
