import * as net from "net";

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** True once something accepts connections on 127.0.0.1:port, false after `seconds` or once aborted. */
export async function waitForPort(port: number, seconds: number, signal?: AbortSignal): Promise<boolean> {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline && !signal?.aborted;) {
    const open = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => (c.end(), resolve(true)));
      c.on("error", () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
