// Times and names as the windows show them: "5m ago", "in 3m", a short date, "Ann Lee @ann",
// and what an approval an agent waits on is about.

export function ago(ms) {
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function until(ms) {
  if (!ms) return "—";
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return "expired";
  if (s < 60) return `in ${s}s`;
  if (s < 3600) return `in ${Math.ceil(s / 60)}m`;
  return `in ${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

export function date(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString(undefined, {
    year: sameYear ? undefined : "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export const iso = (s) => (s ? Date.parse(s) : 0);

/** A chat sender's name from a request's metadata: "Ann Lee @ann" (empty when none). */
export function metaName(meta) {
  if (!meta) return "";
  const user = meta.username ? `@${meta.username}` : "";
  const full = [meta.firstName, meta.lastName].filter(Boolean).join(" ") || meta.name || "";
  return [full, user].filter(Boolean).join(" ");
}

/** The answers an approval can get, as its buttons name them. */
export const EXEC_LABELS = { "allow-once": "Allow once", "allow-always": "Always allow", deny: "Deny" };

/** Where and for whom an agent's command would run, or which plugin and tool ask, in one line. */
export function approvalContext(r) {
  const parts = [];
  if (r.pluginId) parts.push(`plugin ${r.pluginId}`);
  if (r.toolName) parts.push(`tool ${r.toolName}`);
  if (r.cwd) parts.push(`in ${r.cwd}`);
  if (r.host === "node" && r.nodeId) parts.push(`on node ${r.nodeId}`);
  else if (r.host) parts.push(`on the ${r.host}`);
  if (r.agentId) parts.push(`agent ${r.agentId}`);
  if (r.sessionKey) parts.push(`session ${r.sessionKey}`);
  return parts.join(" · ");
}
