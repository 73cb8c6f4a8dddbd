// The `@isol8/kit/errors` entry: the error classes and the error table, without the schemas and
// hooks (a client such as @isol8/remote loads only this at start-up).
export * from "./errors.js";
export * from "./error-table.js";
