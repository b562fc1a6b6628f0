// Drives OpenClaw's own GatewayClient (from the installed `openclaw` package's public export
// `openclaw/plugin-sdk/gateway-runtime`) for the interop tests: connect, call some methods,
// print what happened. The connect frame, the signature, the device identity and the stored
// device tokens are all OpenClaw's code; this file only wires them to the command line.
//
//   node gateway-client.mjs '{"url": "ws://127.0.0.1:18789", "stateDir": "/tmp/phone",
//        "token"?, "bootstrapToken"?, "deviceToken"?, "noDevice"?, "role"?, "scopes"?,
//        "displayName"?, "caps"?, "commands"?, "permissions"?, "calls"?: [{"method", "params"}],
//        "timeoutMs"?, "printEvents"?}'
//
// Prints one JSON object a line: {"hello": …} or {"connectError": {code, message, details}},
// then {"result": {method, ok, payload | error}} per call, and with printEvents every event
// as it arrives ({"event": {name, payload}}). Exit 0 when everything worked,
// 2 when connect failed, 3 when a call failed.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const spec = JSON.parse(process.argv[2] ?? "{}");
const pkgDir = process.env.CLAWPAIR_OPENCLAW_PKG;
if (!pkgDir || !spec.url || !spec.stateDir) {
  process.stderr.write("gateway-client.mjs: needs CLAWPAIR_OPENCLAW_PKG and a spec with url and stateDir\n");
  process.exit(64);
}
// OpenClaw keeps the device's identity and tokens in its state directory's SQLite store.
fs.mkdirSync(spec.stateDir, { recursive: true, mode: 0o700 });
const config = path.join(spec.stateDir, "openclaw.json");
if (!fs.existsSync(config)) {
  fs.writeFileSync(config, JSON.stringify({ logging: { file: path.join(spec.stateDir, "openclaw.log") } }), {
    mode: 0o600,
  });
}
process.env.OPENCLAW_STATE_DIR = spec.stateDir;
process.env.OPENCLAW_CONFIG_PATH = config;

const require = createRequire(path.join(pkgDir, "package.json"));
const { GatewayClient } = await import(pathToFileURL(require.resolve("openclaw/plugin-sdk/gateway-runtime")).href);

const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const failure = (e) => ({
  code: e?.gatewayCode ?? e?.code ?? null,
  message: String(e?.message ?? e),
  details: e?.details ?? null,
});

const hello = new Promise((resolve, reject) => {
  const client = new GatewayClient({
    url: spec.url,
    ...(spec.token ? { token: spec.token } : {}),
    ...(spec.bootstrapToken ? { bootstrapToken: spec.bootstrapToken } : {}),
    ...(spec.deviceToken ? { deviceToken: spec.deviceToken } : {}),
    ...(spec.noDevice ? { deviceIdentity: null } : {}),
    ...(spec.role ? { role: spec.role } : {}),
    ...(spec.scopes ? { scopes: spec.scopes } : {}),
    ...(spec.displayName ? { clientDisplayName: spec.displayName } : {}),
    ...(spec.caps ? { caps: spec.caps } : {}),
    ...(spec.commands ? { commands: spec.commands } : {}),
    ...(spec.permissions ? { permissions: spec.permissions } : {}),
    requestTimeoutMs: spec.timeoutMs ?? 15000,
    ...(spec.printEvents ? { onEvent: (e) => print({ event: { name: e.event, payload: e.payload } }) } : {}),
    onHelloOk: (h) => resolve({ client, hello: h }),
    onConnectError: (e) => reject(e),
    onClose: (code, reason, info) => {
      const e =
        info?.connectError ?? Object.assign(new Error(`closed before hello-ok: ${code} ${reason}`), { code: "CLOSED" });
      reject(e);
    },
  });
  client.start();
  setTimeout(
    () => reject(Object.assign(new Error("no hello-ok in time"), { code: "TIMEOUT" })),
    spec.timeoutMs ?? 15000,
  );
});

let exit = 0;
let client;
try {
  const r = await hello;
  client = r.client;
  print({ hello: r.hello });
  for (const c of spec.calls ?? []) {
    try {
      print({ result: { method: c.method, ok: true, payload: await client.request(c.method, c.params ?? {}) } });
    } catch (e) {
      print({ result: { method: c.method, ok: false, error: failure(e) } });
      exit = 3;
    }
  }
} catch (e) {
  print({ connectError: failure(e) });
  exit = 2;
}
try {
  await client?.stopAndWait({ timeoutMs: 3000 });
} catch {}
process.exit(exit);
