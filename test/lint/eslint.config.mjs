// ESLint flat config, run as `eslint -c test/lint/eslint.config.mjs` (the
// top level of the repository is fixed, so the config lives with the tests).
// typescript-eslint's type-aware rules plus Pulumi's own plugin, as
// pulumi-eks and pulumi-awsx do: an Output pasted into a template literal
// becomes a warning text instead of its value, and only type information can
// tell an Output from a string.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
  { ignores: ["node_modules/**", "bin/**", "dist/**", ".e2e-cache/**", "**/*.mjs", "**/*.js", "test/fixtures/lint/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: process.cwd() },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Tests match rendered text, whose runs of spaces are exact.
      "no-regex-spaces": "off",
    },
  },
  {
    // Tests read untyped YAML, JSON and mock inputs on purpose; the type-unsafe
    // family would only ask for casts there. Production code keeps them.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
    },
  },
);
