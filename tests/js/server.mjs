// Starts `hourglass serve` ($HOURGLASS_BIN, else target/debug/hourglass of this repository) in a
// fresh temporary data directory on ephemeral loopback ports, and stops it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function startServer() {
  const bin = process.env.HOURGLASS_BIN || join(repoRoot, "target", "debug", "hourglass");
  if (!existsSync(bin)) {
    throw new Error(`hourglass binary not found at ${bin}: run 'cargo build -p hourglass' or set HOURGLASS_BIN`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "hourglass-js-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HOURGLASS_") || k === "HOURGLASS_LOG"));
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const address = await new Promise((resolveAddr, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no 'http listening on' within 60 s; stderr: ${stderr}`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /http listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hourglass exited with ${code} while starting; stderr: ${stderr}`));
    });
  });
  child.stdout.resume();
  return {
    url: `http://${address}`,
    address,
    dataDir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
