import type Docker from "dockerode";
import type { NetworkInfo, NetworkSpec, SandboxDriver } from "@isol8/kit";
import type { DockerDriver } from "./driver.js";

/** SandboxDriver.networks on Docker: bridge networks, an internal one with no address for the host. */
export function dockerNetworks(driver: DockerDriver): SandboxDriver["networks"] {
  return {
    create: async (spec: NetworkSpec): Promise<void> => {
      await driver.docker
        .createNetwork({
          Name: spec.name,
          Driver: "bridge",
          Internal: spec.internal,
          EnableIPv6: false,
          CheckDuplicate: true,
          // An internal network gets no address on the bridge: the host (and every service it runs) is unreachable from it.
          ...(spec.internal && { Options: { "com.docker.network.bridge.inhibit_ipv4": "true" } }),
          Labels: { ...spec.labels },
          ...(spec.subnet !== undefined && { IPAM: { Driver: "default", Config: [{ Subnet: spec.subnet }] } }),
        })
        .catch((error: unknown) => {
          throw driver.wrap(error);
        });
    },
    remove: async (name: string): Promise<void> => {
      await driver.docker
        .getNetwork(name)
        .remove()
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 404) throw driver.wrap(error);
        });
    },
    list: async (labels: Readonly<Record<string, string | true>>): Promise<{ name: string; labels: Record<string, string> }[]> => {
      const label = Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
      const list = await driver.docker.listNetworks({ filters: { label } }).catch((error: unknown) => {
        throw driver.wrap(error);
      });
      return list.map((n) => ({ name: n.Name, labels: n.Labels ?? {} }));
    },
    inspect: async (name: string): Promise<NetworkInfo | undefined> => {
      try {
        const info = (await driver.docker.getNetwork(name).inspect()) as Docker.NetworkInspectInfo;
        return {
          name: info.Name,
          labels: info.Labels ?? {},
          internal: info.Internal,
          subnets: (info.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])),
        };
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw driver.wrap(error);
      }
    },
    attached: async (name: string): Promise<string[] | undefined> => {
      try {
        const info = (await driver.docker.getNetwork(name).inspect()) as { Containers?: Record<string, unknown> };
        return Object.keys(info.Containers ?? {});
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw driver.wrap(error);
      }
    },
    connect: async (name: string, sandboxId: string, address?: string): Promise<void> => {
      await driver.docker
        .getNetwork(name)
        .connect({ Container: sandboxId, ...(address !== undefined && { EndpointConfig: { IPAMConfig: { IPv4Address: address } } }) })
        .catch((error: unknown) => {
          throw driver.wrap(error);
        });
    },
    disconnect: async (name: string, sandboxId: string): Promise<void> => {
      await driver.docker
        .getNetwork(name)
        .disconnect({ Container: sandboxId, Force: true })
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 404 && error.statusCode !== 403) throw driver.wrap(error);
        });
    },
  };
}
