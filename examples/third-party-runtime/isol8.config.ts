import { defineConfig } from "@isol8/kit";
import { rubyRuntime } from "./src/ruby-runtime.js";

export default defineConfig({
  plugins: [rubyRuntime()],
});
