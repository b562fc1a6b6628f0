// The window shown when ClawPair cannot start on the owner's settings file: where the mistake
// is, and the ways back. It changes nothing unless the owner asks.
import { invoke } from "./lib/core.js";
import { $ } from "./lib/dom.js";

function say(text) {
  $("problem-status").textContent = text;
}

function show(p) {
  $("problem-what").textContent = p.reason;
  $("problem-path").textContent = p.path;
  $("problem-line").textContent = `line ${p.line}, column ${p.column}`;
  const last = p.lastGood;
  $("problem-last").hidden = !last;
  if (last) {
    const when = last.when || "earlier";
    $("problem-last-when").textContent = when;
    $("problem-restore-when").textContent = when;
    $("problem-last-path").textContent = last.path;
  }
}

async function refresh() {
  try {
    show(await invoke("settings_problem"));
  } catch (e) {
    say(e.message || String(e));
  }
}

async function act(button, cmd, busy) {
  button.disabled = true;
  say(busy);
  try {
    const r = await invoke(cmd);
    say(r?.message ? r.message : "");
  } catch (e) {
    say(e.message || String(e));
    await refresh();
  } finally {
    button.disabled = false;
  }
}

function start() {
  $("problem-open").addEventListener("click", (e) => act(e.currentTarget, "open_settings_file", "Opening the file…"));
  $("problem-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("problem-path").textContent);
      say("Path copied.");
    } catch {
      say("Could not copy: select the path above instead.");
    }
  });
  $("problem-retry").addEventListener("click", (e) =>
    act(e.currentTarget, "check_settings_again", "Checking the file…"),
  );
  $("problem-restore").addEventListener("click", (e) =>
    act(e.currentTarget, "restore_settings", "Putting back the last working settings…"),
  );
  refresh();
  $("main").focus();
}

start();
