// What a systemd ExecStart line can hold: appCommand and appArgs are checked against it.

/**
 * Why appCommand cannot be a slot's ExecStart, or undefined. Besides appArgs' rules: the
 * program is a plain word (a name systemd finds on its PATH, an absolute path, or a path
 * inside the release, e.g. .venv/bin/gunicorn), never one of systemd's prefixes ("+" would
 * run it as root, outside the sandbox), a variable or a path out of the release.
 */
export function appCommandProblem(cmd: string): string | undefined {
  const program = cmd.split(/\s+/)[0];
  if (!/^[A-Za-z0-9_./][A-Za-z0-9_./+-]*$/.test(program) || program.split("/").includes(".."))
    return `must start with the program to run: a name found on the host's PATH (node), an absolute path, or a path inside the release (bin/server); not ${JSON.stringify(program)}`;
  return unitArgsProblem(cmd);
}

/**
 * Why a value cannot follow the binary on a systemd ExecStart line, or undefined.
 * systemd reads "\\" as an escape (a trailing one joins the next line), "%" as a
 * specifier, a lone ";" as the start of a second command, and needs quotes to pair
 * (systemd.service(5), "Command lines"). ${VAR} from the env file stays allowed.
 */
export function unitArgsProblem(args: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\x00-\x1f\x7f]/.test(args)) return "must be a single line without control characters";
  if (args.includes("\\")) return 'must not contain "\\" (systemd reads it as an escape)';
  if (args.includes("%"))
    return 'must not contain "%" (systemd expands it as a specifier; pass such values through appEnv and ${NAME})';
  if (/(^|\s);(\s|$)/.test(args)) return 'must not contain a lone ";" (systemd starts a second command there)';
  const inWord = /(?:[^\s]\$([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)[^\sA-Za-z0-9_])/.exec(args);
  if (inWord) {
    const name = inWord[1] ?? inWord[2];
    return `has $${name} inside a word, which systemd leaves as it is; write \${${name}}`;
  }
  let quote: string | undefined;
  for (const ch of args) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
  }
  if (quote) return `has an unclosed ${quote} quote`;
  return undefined;
}
