import { InvalidOptionsError, definePlugin, type Kit, type SandboxSpec, type SeccompModeDefinition, type SeccompPolicy, type SpecContext } from "@isol8/kit";
import * as z from "zod";
import { loadCustomProfile } from "./custom.js";
import { REFUSED_SYSCALLS, nativeArchitecture, strictProfile } from "./strict.js";

export { loadCustomProfile, validateProfile } from "./custom.js";
export {
  seccompProfileSchema,
  ruleNames,
  type SeccompProfile,
  type SeccompRule,
  type SeccompArg,
  type SeccompAction,
  type SeccompArchitecture,
} from "./profile.js";
export {
  ALLOWED_PERSONALITIES,
  ALLOWED_SOCKET_FAMILIES,
  ALLOWED_SYSCALL_GROUPS,
  CLONE_NAMESPACE_FLAGS,
  REFUSED_SYSCALLS,
  X86_64_ONLY_SYSCALLS,
  allowedSyscalls,
  nativeArchitecture,
  strictProfile,
} from "./strict.js";

export const PLUGIN_NAME = "isol8:seccomp";

const optionsSchema = z.strictObject({
  /**
   * Syscall names to add to the strict allowlist, for a runtime that needs one strict leaves out.
   * Names strict refuses on purpose (REFUSED_SYSCALLS) cannot be added: use the custom mode.
   */
  extraAllowed: z
    .array(z.string().regex(/^[a-z_][a-z0-9_]*$/, "a syscall name: lower-case letters, digits and underscores"))
    .default([])
    .superRefine((names, ctx) => {
      names.forEach((name, index) => {
        if (name in REFUSED_SYSCALLS || name === "clone3" || name === "clone" || name === "personality" || name === "socket") {
          ctx.addIssue({
            code: "custom",
            path: [index],
            message: `"${name}" is refused or restricted by the strict profile on purpose (${REFUSED_SYSCALLS[name] ?? "argument-filtered"}); use security.seccomp "custom" for a different policy`,
          });
        }
      });
    }),
  /**
   * The Docker engine's architecture, when it differs from this process's (a remote DOCKER_HOST).
   * Default: the architecture Node.js runs on.
   */
  architecture: z.enum(["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]).optional(),
});

export type SeccompPluginOptions = z.input<typeof optionsSchema>;

/**
 * The spec with this system-call filter in place of whatever filter it had; every other field
 * (no-new-privileges, capabilities) is kept. The driver passes the profile's JSON itself (Docker's
 * Engine API takes it inline, `SecurityOpt: seccomp=<json>`: the CLI reads a file, the API does not).
 */
function withSeccomp(spec: SandboxSpec, seccomp: SeccompPolicy): SandboxSpec {
  return { ...spec, seccomp };
}

/**
 * `seccomp()`: registers the seccomp modes `strict` (isol8's own allowlist profile; the engine's
 * default once this plugin is present), `unconfined` (no filter, with a warning) and `custom`
 * (the profile in `security.seccompProfile`: a JSON file path or an inline object, validated).
 */
export const seccomp = definePlugin({
  name: PLUGIN_NAME,
  options: optionsSchema,
  setup: (options) => (kit: Kit) => {
    // Per kit, hence per engine: nothing here is shared between engines.
    const warned = new Set<string>();
    const warnOnce = (key: string, message: string, engineId: string) => {
      if (warned.has(`${engineId}:${key}`)) return;
      warned.add(`${engineId}:${key}`);
      kit.log.warn(message, { plugin: PLUGIN_NAME, engineId });
    };
    /** A profile given with another mode is not used: say so rather than ignore it silently. */
    const warnUnusedProfile = (mode: string, context: SpecContext) => {
      if (context.options.security.seccompProfile === undefined) return;
      warnOnce(
        "unused-profile",
        `security.seccompProfile is set but the seccomp mode is "${mode}": the profile is not used (set security.seccomp to "custom" to use it)`,
        context.engineId,
      );
    };

    let strictJson: string | undefined;
    const strict: SeccompModeDefinition = {
      shapeSpec(spec, context) {
        warnUnusedProfile("strict", context);
        if (strictJson === undefined) {
          let architecture;
          try {
            architecture = options.architecture ?? nativeArchitecture();
          } catch (error) {
            throw new InvalidOptionsError(`${(error as Error).message} Pass seccomp({ architecture }) or use another seccomp mode.`, { plugin: PLUGIN_NAME });
          }
          strictJson = JSON.stringify(strictProfile(architecture, options.extraAllowed));
        }
        return withSeccomp(spec, { kind: "profile", json: strictJson });
      },
    };

    const unconfined: SeccompModeDefinition = {
      shapeSpec(spec, context) {
        warnOnce("unconfined", "seccomp is unconfined: sandboxed code can make any syscall the kernel offers (other protections stay on)", context.engineId);
        warnUnusedProfile("unconfined", context);
        return withSeccomp(spec, { kind: "unconfined" });
      },
    };

    // One load per engine; a failed load is not kept, so a fixed file is picked up on the next try.
    const loaded = new Map<string, Promise<string>>();
    const custom: SeccompModeDefinition = {
      // engine.start() checks the profile, so a bad one fails before any container is made.
      async start(context) {
        await loadCustomProfile(context.options.security.seccompProfile);
      },
      async shapeSpec(spec, context) {
        let json = loaded.get(context.engineId);
        if (!json) {
          json = loadCustomProfile(context.options.security.seccompProfile).then((profile) => {
            if (profile.defaultAction === "SCMP_ACT_ALLOW" || profile.defaultAction === "SCMP_ACT_LOG") {
              warnOnce(
                "denylist",
                "the custom seccomp profile allows every syscall it does not name (a denylist): syscalls added by newer kernels are allowed",
                context.engineId,
              );
            }
            return JSON.stringify(profile);
          });
          loaded.set(context.engineId, json);
          json.catch(() => loaded.delete(context.engineId));
        }
        return withSeccomp(spec, { kind: "profile", json: await json });
      },
    };

    kit.seccompModes.register("strict", strict, PLUGIN_NAME);
    kit.seccompModes.register("unconfined", unconfined, PLUGIN_NAME);
    kit.seccompModes.register("custom", custom, PLUGIN_NAME);
  },
});

export default seccomp;
