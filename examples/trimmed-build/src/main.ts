import { createEngine, validateConfig } from "@isol8/core";
import config from "../isol8.config.js";

// The config is imported (and so bundled) rather than searched for at run time: a trimmed build
// carries no config loader either.
const engine = createEngine(validateConfig(config));
try {
  const code = process.argv[2] ?? "print(sum(range(10)))";
  const result = await engine.execute({ runtime: "python", code });
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.exitCode;
} finally {
  await engine.stop();
}
