/* eslint-disable @typescript-eslint/no-explicit-any -- the load script's records are loose JSON, read field by field in the test */
// Types of fleet.mjs, for test/integration/fleet.test.ts.
import type { ChildProcess } from "node:child_process";

export const REPO_ROOT: string;
export const CLI: string;
export const HAPROXY_CFG: string;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FleetNode {
  id: string;
  port: number;
  pid: number;
  url: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  lines: Record<string, unknown>[];
  stderr(): string;
  /** Signals the node's own process (under a wrapper: the wrapper's child). */
  signal(name: NodeJS.Signals): Promise<void>;
}

export interface Haproxy {
  url: string;
  child: ChildProcess;
  exited: Promise<Exit>;
  stderr(): string;
  states(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export interface Answer {
  status: number;
  node: string | null;
  json: any;
  text: string;
}

export function freePort(): Promise<number>;
export function haproxyInstalled(): Promise<boolean>;
export function startNode(options: { id: string; port: number; dir: string; key: string; server?: Record<string, any>; wrap?: string[] }): Promise<FleetNode>;
export function haproxyConfig(options: { port: number; statsPort: number; nodes: { id: string; port: number }[] }): Promise<string>;
export function startHaproxy(options: { dir: string; nodes: { id: string; port: number }[]; port?: number; statsPort?: number }): Promise<Haproxy>;
export function waitForState(haproxy: Haproxy, ids: string[], state: string, timeoutMs?: number): Promise<void>;
export function containersOfPid(pid: number): Promise<string[]>;
export function execute(url: string, key: string, body: unknown, headers?: Record<string, string>): Promise<Answer>;
