/**
 * The names and labels of what network mode "filtered" makes for an engine: its egress network,
 * its proxy, one network per sandbox. Cleanup finds each part by the engine's id and its role.
 */
import type { NetworkModeContext } from "@isol8/kit";

export const PLUGIN = "isol8:network-filter";

/** The label that tells the parts of a filtered network apart. */
export const ROLE_LABEL = "isol8.role";
export const ROLES = { proxy: "network-filter-proxy", sandbox: "network-filter-sandbox", egress: "network-filter-egress" } as const;

/** The proxy's port on the sandbox networks. */
export const PROXY_PORT = 3128;
/** The proxy's log endpoint, on the egress network. */
export const LOG_PORT = 3129;

/** The engine's ownership labels (the reaper and cleanup find what carries them) and the part's role. */
export function partLabels(context: NetworkModeContext, role: (typeof ROLES)[keyof typeof ROLES]): Record<string, string> {
  return { ...context.ownerLabels, [ROLE_LABEL]: role };
}

export function egressNetworkName(engineId: string): string {
  return `isol8-${engineId}-egress`;
}

export function proxyName(engineId: string): string {
  return `isol8-${engineId}-proxy`;
}

/** The prefix of an engine's sandbox networks' names. */
export function sandboxNetworkPrefix(engineId: string): string {
  return `isol8-${engineId}-sandbox-`;
}

/** The name of an engine's sandbox network in a slot. */
export function sandboxNetworkName(engineId: string, slot: number): string {
  return `${sandboxNetworkPrefix(engineId)}${slot}`;
}
