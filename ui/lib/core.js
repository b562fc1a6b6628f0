// The app's commands: `invoke` as Tauri gives it, and `act`, which says what went wrong.
import { toast } from "./dom.js";

export const tauri = window.__TAURI__;
let send = (cmd, args) => tauri.core.invoke(cmd, args);
export const invoke = (cmd, args) => send(cmd, args);

/**
 * For the window's end-to-end tests: commands go to `route(cmd, args, real)` until the
 * returned function is called (Tauri's own `invoke` is frozen, so it cannot be wrapped).
 */
export function routeCommandsForTests(route) {
  const real = send;
  send = (cmd, args) => route(cmd, args, real);
  return () => {
    send = real;
  };
}

/** Runs a command; shows its one-line error instead of failing silently. */
export async function act(cmd, args, okMsg) {
  try {
    const r = await invoke(cmd, args);
    if (okMsg) toast(okMsg, "ok");
    return r;
  } catch (e) {
    toast(e?.message || String(e), "bad");
    return null;
  }
}

const latestCall = new Map();

/**
 * `act` for a view's list: the answer is used only if no call of the same command started
 * after this one (null otherwise). Answers can arrive out of order, and an older one applied
 * after a newer one would show a list that is no longer true.
 */
export async function actLatest(cmd, args) {
  const ticket = (latestCall.get(cmd) || 0) + 1;
  latestCall.set(cmd, ticket);
  const r = await act(cmd, args);
  return latestCall.get(cmd) === ticket ? r : null;
}
