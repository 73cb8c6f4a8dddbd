/**
 * `@isol8/kit/results`, types only: what an execution gives back (the result, its rich outputs,
 * the stream events) and what GET /runtimes lists. Their declarations need neither Node's types
 * nor zod, so a browser client (the playground, packages/ui) can import them. `isol8 serve` sends
 * them as JSON.stringify makes them: every field is a string, number, boolean, array or plain
 * object (no Date, no Buffer), so the types are the wire's too.
 */
export type {
  CellError,
  ExecutionResult,
  NetworkLogEntry,
  OmittedFile,
  OutputPhase,
  ResourceUsage,
  RichOutput,
  RuntimeInfo,
  SetupResult,
  StreamEvent,
} from "./results.js";
