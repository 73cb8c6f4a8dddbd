import { defineConfig } from "@isol8/core";
import { rubyRuntime } from "./src/ruby-runtime.js";

export default defineConfig({
  plugins: [rubyRuntime()],
});
