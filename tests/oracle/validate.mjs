// Nosana's job-definition validator as a long-lived process: one JSON document per line on
// stdin, one answer per line on stdout, {"valid": bool, "errors": [{path, expected}]}, so that
// hundreds of documents cost one start of node. Where the validator itself throws (it reads
// `null.port` in an `expose` list holding null), Nosana's node cannot accept the job: the
// answer is {"valid": false, "threw": message}. A line that is not JSON answers with an
// "error" instead of a verdict (the caller sent something wrong, not a job definition).
//
// Usage: node validate.mjs INSTALL_DIR   (the folder `npm ci` filled from this folder's lock)
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const installed = process.argv[2];
const require = createRequire(join(installed, "package.json"));
const { validateJobDefinition } = await import(
  pathToFileURL(require.resolve("@nosana/types")).href
);

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let document;
  try {
    document = JSON.parse(line);
  } catch (exc) {
    process.stdout.write(JSON.stringify({ error: String(exc) }) + "\n");
    continue;
  }
  let answer;
  try {
    const result = validateJobDefinition(document);
    const errors = (result.errors ?? []).map((e) => ({ path: e.path, expected: e.expected }));
    answer = { valid: result.success, errors };
  } catch (exc) {
    answer = { valid: false, errors: [], threw: String(exc) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
