// Settings: the gateway, pairing, the Telegram bot, OpenClaw (attach or not), the desktop; a
// sticky Save bar that says what is unsaved, and leaving asks before edits are dropped.
import { act, invoke } from "../lib/core.js";
import { $, confirmDialog, el, replaceKeepingFocus, toast } from "../lib/dom.js";
import { state } from "../lib/state.js";
import { renderStatus } from "../lib/status.js";

// Set while the owner edits the Settings form, so live updates never overwrite their edits.
let settingsDirty = false;
// Edits made so far: a save under way leaves alone what was typed after it began.
let edits = 0;

function renderTelegramStatus() {
  const tg = state.status?.telegram;
  $("set-tg-status").textContent = !tg?.configured
    ? "Off: enable it and give a bot token to start the bot."
    : tg.connected
      ? "Connected to Telegram."
      : tg.error
        ? `Not connected: ${tg.error}`
        : "Connecting…";
}

/** The OpenClaw section of Settings and the guide's offer: what is installed, and whether
 * ClawPair is attached to it. */
export async function renderOpenClaw() {
  const o = await act("openclaw_info");
  if (!o) return;
  $("set-oc-found").textContent = o.found
    ? `OpenClaw is installed here (${o.stateDir}), its gateway at ${o.url}${o.tokenInConfig ? "; its config holds the token, which ClawPair reads each time and never copies." : "; its config has no token ClawPair can read: type it below."}`
    : `No OpenClaw installation found on this computer${o.problem ? ` (${o.problem.replace(/^no OpenClaw installation here \((.*)\)$/, "$1")})` : ""}. To attach to a gateway elsewhere, give its URL and token.`;
  $("set-oc-url").value = o.attach.url || "";
  $("set-oc-pin").value = o.attach.tlsFingerprint || "";
  $("set-oc-token").value = "";
  $("set-oc-token").placeholder = o.attach.tokenSet ? "A token is stored (type to replace it)" : "";
  $("set-oc-attach").hidden = o.attach.enabled;
  $("set-oc-detach").hidden = !o.attach.enabled;
  $("set-oc-own-box").hidden = !o.attach.enabled;
  $("set-oc-own").checked = !!o.attach.ownGateway;
  $("set-oc-status").textContent = state.status?.attach ? state.status.attach.line : "ClawPair runs its own gateway.";
  renderGateways();
  $("guide-openclaw").hidden = !o.found || o.attach.enabled;
  $("guide-openclaw-url").textContent = o.url || "";
}

/** Each attached gateway with its status; those added beside the first can be removed. */
function renderGateways() {
  const gws = state.status?.attach?.gateways || [];
  const list = $("set-oc-gateways");
  list.hidden = gws.length < 2 && !gws.some((g) => g.listed);
  replaceKeepingFocus(
    list,
    gws.map((g) =>
      el(
        "li",
        {},
        el("span", { class: `dot ${g.attached ? "ok" : "bad"}`, "aria-hidden": "true" }),
        el("span", { class: "gateway-line" }, el("strong", { text: g.label }), ` — ${g.line}`),
        g.listed
          ? el(
              "button",
              {
                type: "button",
                class: "small",
                "aria-label": `Remove the gateway ${g.label}`,
                "data-focus-key": `remove-gateway:${g.url}`,
                onclick: async () => {
                  if (await act("attach_remove", { gateway: g.url }, `Removed ${g.label}`)) {
                    await renderStatus();
                    renderOpenClaw();
                  }
                },
              },
              "Remove",
            )
          : null,
      ),
    ),
  );
}

/** Adds the gateway typed in "another gateway as well"; the token is cleared either way. */
async function addGateway() {
  const r = await act(
    "attach_add",
    {
      url: $("set-oc-add-url").value.trim(),
      token: $("set-oc-add-token").value || null,
      tlsFingerprint: $("set-oc-add-pin").value.trim() || null,
      label: $("set-oc-add-label").value.trim() || null,
    },
    "Added the gateway",
  );
  $("set-oc-add-token").value = "";
  if (!r) return;
  for (const id of ["set-oc-add-url", "set-oc-add-pin", "set-oc-add-label"]) $(id).value = "";
  await renderStatus();
  renderOpenClaw();
}

export async function setAttach(enabled) {
  const r = await act(
    "set_attach",
    {
      enabled,
      url: $("set-oc-url").value.trim() || null,
      token: $("set-oc-token").value || null,
      tlsFingerprint: $("set-oc-pin").value.trim() || null,
    },
    enabled ? "Attaching to OpenClaw" : "Detached: ClawPair runs its own gateway",
  );
  await renderStatus();
  renderOpenClaw();
  return r;
}

/** An edit in the form: counted, so a save that was under way does not drop it. */
function edited() {
  edits += 1;
  markSettings(true);
}

/** Whether Settings holds edits not saved yet: said beside Save, with a way to drop them. */
function markSettings(dirty) {
  settingsDirty = dirty;
  $("settings-unsaved").textContent = dirty ? "Unsaved changes" : "";
  $("settings-discard").hidden = !dirty;
}

export async function renderSettings(force) {
  renderTelegramStatus();
  renderOpenClaw();
  if (settingsDirty && !force) return;
  const s = await act("get_settings");
  if (!s || (settingsDirty && !force)) return;
  $("set-bind").value = s.bind;
  const known = ["127.0.0.1", "0.0.0.0"].includes(s.bind);
  $("set-bind-choice").value = known ? s.bind : "custom";
  $("set-bind-custom").hidden = known;
  markSettings(false);
  $("set-port").value = s.port;
  $("set-public-url").value = s.publicUrl || "";
  $("set-dm-ttl").value = s.pairingTtlMinutes;
  $("set-dm-max").value = s.pairingMaxPending;
  $("set-dev-ttl").value = s.devicePendingTtlMinutes;
  $("set-setup-ttl").value = s.setupCodeTtlMinutes;
  $("set-stale-days").value = s.staleAfterDays || "";
  $("set-expire-stale").checked = !!s.expireStale;
  $("set-tg-enabled").checked = s.telegram.enabled;
  $("set-tg-token").value = "";
  $("set-tg-token").placeholder = s.telegram.botTokenSet
    ? "A token is stored (type to replace it)"
    : "123456:ABC… from @BotFather";
  $("set-tg-owners").value = (s.telegram.owners || []).join(", ");
  $("set-notifications").checked = s.notifications;
  $("set-autostart").checked = s.startAtLogin;
  $("set-paused").checked = !!state.status?.paused;
  const channels = s.channels.length ? s.channels : [{ name: "telegram", dmPolicy: "pairing" }];
  replaceKeepingFocus($("set-policies"), [
    el("p", { class: "label", text: "Who may write, per channel" }),
    ...channels.map((c) =>
      el(
        "label",
        { class: "policy" },
        el("span", { text: c.name }),
        el(
          "select",
          { "data-channel": c.name, "data-focus-key": `policy:${c.name}` },
          ...[
            ["pairing", "Pairing: strangers get a code"],
            ["allowlist", "Allowlist only: no codes"],
            ["open", "Open: everyone"],
            ["disabled", "Disabled: ignore all DMs"],
          ].map(([v, t]) => el("option", { value: v, selected: v === c.dmPolicy, text: t })),
        ),
      ),
    ),
  ]);
  markSettings(false);
}

async function saveSettings(ev) {
  ev.preventDefault();
  const policies = {};
  for (const s of document.querySelectorAll("#set-policies select")) policies[s.dataset.channel] = s.value;
  const patch = {
    bind: $("set-bind-choice").value === "custom" ? $("set-bind").value.trim() : $("set-bind-choice").value,
    port: Number($("set-port").value),
    publicUrl: $("set-public-url").value.trim(),
    pairingTtlMinutes: Number($("set-dm-ttl").value),
    pairingMaxPending: Number($("set-dm-max").value),
    devicePendingTtlMinutes: Number($("set-dev-ttl").value),
    setupCodeTtlMinutes: Number($("set-setup-ttl").value),
    staleAfterDays: $("set-stale-days").value.trim() ? Number($("set-stale-days").value) : 0,
    expireStale: $("set-expire-stale").checked,
    dmPolicies: policies,
    telegramEnabled: $("set-tg-enabled").checked,
    telegramBotToken: $("set-tg-token").value,
    telegramOwners: $("set-tg-owners")
      .value.split(",")
      .map((x) => x.trim())
      .filter(Boolean),
    notifications: $("set-notifications").checked,
  };
  const editsAtSave = edits;
  try {
    await invoke("save_settings", { patch });
    $("settings-error").hidden = true;
    const wantAuto = $("set-autostart").checked;
    if (wantAuto !== !!state.status?.startAtLogin) await act("set_autostart", { enabled: wantAuto });
    const wantPause = $("set-paused").checked;
    if (wantPause !== !!state.status?.paused) await act("set_paused", { paused: wantPause });
    toast("Settings saved", "ok");
    // What was typed while saving stays, still marked unsaved.
    if (edits === editsAtSave) markSettings(false);
    await renderStatus();
    if (edits === editsAtSave) renderSettings(true);
  } catch (e) {
    $("settings-error").textContent = e?.message || String(e);
    $("settings-error").hidden = false;
    $("settings-error").scrollIntoView({ block: "nearest" });
  }
}

/** Whether the owner may leave Settings now: edits are never dropped without a word. */
async function mayLeave() {
  if (!settingsDirty) return true;
  const leave = await confirmDialog(
    "Leave Settings without saving?",
    "Your changes to the settings are not saved yet.",
    "Discard changes",
  );
  if (leave) markSettings(false);
  return leave;
}

function wire() {
  $("set-oc-attach").addEventListener("click", () => setAttach(true));
  $("set-oc-detach").addEventListener("click", () => setAttach(false));
  $("set-oc-add").addEventListener("click", addGateway);
  $("set-oc-own").addEventListener("change", async (e) => {
    e.stopPropagation();
    const on = e.currentTarget.checked;
    const r = await act(
      "set_own_gateway",
      { on },
      on ? "ClawPair's own gateway runs beside OpenClaw's" : "ClawPair's own gateway stopped",
    );
    if (!r) e.currentTarget.checked = !on;
    await renderStatus();
    renderOpenClaw();
  });
  $("set-oc-own").addEventListener("input", (e) => e.stopPropagation());
  $("set-oc-more-toggle").addEventListener("click", (e) => {
    const open = $("set-oc-add-box").hidden;
    $("set-oc-add-box").hidden = !open;
    e.currentTarget.setAttribute("aria-expanded", String(open));
    if (open) $("set-oc-add-url").focus();
  });
  // Acts at once with its own button: typing here is not an unsaved edit of the form.
  for (const ev of ["input", "change"]) $("set-oc-more").addEventListener(ev, (e) => e.stopPropagation());
  $("set-rotate-token").addEventListener("click", async () => {
    if (
      !(await confirmDialog(
        "Replace the gateway's admin token?",
        "Everything using the old token (a script, a channel bridge, another computer's CLI) is disconnected at once and refused from then on. This computer's CLI and app use the new one by themselves.",
        "Replace",
      ))
    )
      return;
    await act("rotate_admin_token", {}, "Replaced the admin token; the old one is refused");
  });
  $("set-open-logs").addEventListener("click", async () => {
    const r = await act("open_logs");
    if (r) toast(`Logs are in ${r.path}`, "ok");
  });
  $("settings-form").addEventListener("submit", saveSettings);
  $("settings-form").addEventListener("input", edited);
  $("settings-form").addEventListener("change", edited);
  $("set-bind-choice").addEventListener("change", () => {
    const custom = $("set-bind-choice").value === "custom";
    $("set-bind-custom").hidden = !custom;
    if (custom) $("set-bind").focus();
  });
  $("settings-discard").addEventListener("click", () => {
    $("settings-error").hidden = true;
    renderSettings(true);
  });
}

export const view = {
  name: "settings",
  shortcut: "6",
  touches: /^(settings\.|channel\.status)/,
  render: () => renderSettings(false),
  // Opening Settings shows what is saved.
  enter: () => markSettings(false),
  mayLeave,
  wire,
};
