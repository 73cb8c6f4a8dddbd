import { definePlugin, type AuditRecord } from "@isol8/kit";

/**
 * An audit sink in a few lines, written against @isol8/kit alone: every record of the engines
 * that select sink "memory" (`audit: { sinks: ["memory"] }`) is appended to an array, which the
 * plugin offers as its api (`plugin.api.records`). One array per plugin instance.
 */
export const memoryAudit = definePlugin({
  name: "example:audit-memory",
  setup: () => {
    const records: AuditRecord[] = [];
    return {
      api: { records: records as readonly AuditRecord[] },
      // The kit this apply receives knows the plugin: the sink is registered as its own.
      apply: (kit) => kit.auditSinks.register("memory", { write: async (record) => void records.push(record) }),
    };
  },
});
