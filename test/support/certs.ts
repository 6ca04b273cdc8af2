// A self-signed certificate for a name (EC P-256, 30 days), as the tls step installs one: the
// stdin bundle tls-config.sh MODE=files reads.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderBundle } from "../../components/host/shell";
import { run } from "./tools";

export function selfSignedBundle(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bg-cert-"));
  try {
    const gen = run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "30",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=DNS:${name}`,
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ]);
    if (gen.status !== 0) throw new Error(gen.stderr);
    return renderBundle({
      certificate: fs.readFileSync(`${dir}/cert.pem`, "utf8"),
      key: fs.readFileSync(`${dir}/key.pem`, "utf8"),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
