/* eslint-disable @typescript-eslint/no-explicit-any -- the load script's records are loose JSON, read field by field in the test */
// Types of load.mjs, for test/integration/fleet.test.ts.
import type { FleetNode, Haproxy } from "./fleet.mjs";

export interface Fleet {
  nodes: { id: string; port: number }[];
  running: Map<string, FleetNode>;
  haproxy: Haproxy;
  restart(id: string): Promise<FleetNode>;
  stop(): Promise<void>;
}

export interface ScriptStep {
  name: string;
  at: number;
  run(context: { sessions: unknown[]; marks: Record<string, any>; now: () => number }): Promise<Record<string, unknown>>;
}

export interface LoadResult {
  records: Record<string, any>[];
  sessions: Record<string, any>[];
  marks: Record<string, any>;
  durationMs: number;
}

export function runLoad(options: { url: string; key: string; clients: number; seconds: number; script?: ScriptStep[]; seed?: string }): Promise<LoadResult>;
export function summarize(result: LoadResult): Record<string, any>;
export function startFleet(options: { key: string; count?: number; dir: string; server?: Record<string, any> }): Promise<Fleet>;
export function faultScript(fleet: Fleet, options: { killAt?: number; restartAt?: number; termAt?: number; victim?: string }): ScriptStep[];
