// One lint configuration for the whole workspace (`pnpm lint`). Type-aware typescript-eslint:
// the rules that catch real bugs in an engine full of async Docker calls (floating promises,
// promises where a callback expects void, `any` leaking into typed code, unused code) are on;
// style is Prettier's job (`pnpm format`), so eslint-config-prettier turns every layout rule off.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["**/dist/**", "**/node_modules/**", "bench/results/**", "**/*.d.ts", "packages/server/src/ui/static/**"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // Bugs: a promise nobody awaits or catches (an unhandled rejection crashes the server), and
      // an async function passed where the caller ignores the returned promise.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false, attributes: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "@typescript-eslint/no-explicit-any": "error",
      // Taste, or too noisy for the value here: off.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      "@typescript-eslint/only-throw-error": "off",
      "@typescript-eslint/prefer-promise-reject-errors": "off",
      "no-control-regex": "off",
    },
  },
  {
    // Plain JavaScript (bench, scripts) and the build configs: no type information to check against.
    files: ["**/*.js", "**/*.mjs", "**/*.cjs", "**/tsup.config.ts"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
  {
    // Tests read JSON from programs and servers as `any` on purpose: the values are asserted, not
    // used as types. The async-misuse and unused-code rules still hold there.
    files: ["**/*.test.ts", "test/**/*.ts", "**/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/unbound-method": "off",
    },
  },
  prettier,
);
