import * as z from "zod";

/**
 * The Docker seccomp profile format (the JSON `docker run --security-opt seccomp=<file>` reads,
 * and the Engine API takes inline as `HostConfig.SecurityOpt: ["seccomp=<json>"]`), as the engine
 * this project targets (Docker 20.10, runc 1.1) understands it. Objects are strict: a misspelt
 * key ("syscall", "errno") is an error rather than a rule Docker would silently ignore.
 */

const ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
] as const;

const ARCHITECTURES = [
  "SCMP_ARCH_X86",
  "SCMP_ARCH_X86_64",
  "SCMP_ARCH_X32",
  "SCMP_ARCH_ARM",
  "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS",
  "SCMP_ARCH_MIPS64",
  "SCMP_ARCH_MIPS64N32",
  "SCMP_ARCH_MIPSEL",
  "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32",
  "SCMP_ARCH_PPC",
  "SCMP_ARCH_PPC64",
  "SCMP_ARCH_PPC64LE",
  "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X",
  "SCMP_ARCH_PARISC",
  "SCMP_ARCH_PARISC64",
  "SCMP_ARCH_RISCV64",
] as const;

const OPERATORS = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"] as const;

/** An errno value (EPERM is 1, ENOSYS 38); the kernel returns it negated. */
const errno = z.number().int().min(0).max(4095);
/** A 64-bit unsigned syscall argument; JSON numbers are exact up to 2^53, which covers every flag this format is used for. */
const u64 = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Syscall names are lower-case identifiers (`_llseek`, `pwrite64`). */
const syscallName = z.string().regex(/^[a-z_][a-z0-9_]*$/, "a syscall name: lower-case letters, digits and underscores");
const action = z.enum(ACTIONS, {
  error: (issue) =>
    issue.input === "SCMP_ACT_NOTIFY" ? "SCMP_ACT_NOTIFY needs a user-space listener, which isol8 does not provide" : `expected one of ${ACTIONS.join(", ")}`,
});
const architecture = z.enum(ARCHITECTURES);

const argSchema = z.strictObject({
  index: z.number().int().min(0).max(5),
  value: u64,
  valueTwo: u64.optional(),
  op: z.enum(OPERATORS),
});

const filterSchema = z.strictObject({
  caps: z.array(z.string()).optional(),
  arches: z.array(z.string()).optional(),
  minKernel: z
    .string()
    .regex(/^\d+\.\d+$/, 'a kernel version such as "4.8"')
    .optional(),
});

const ruleSchema = z
  .strictObject({
    names: z.array(syscallName).min(1).optional(),
    /** The old single-name form; Docker accepts one of `name` and `names`. */
    name: syscallName.optional(),
    action,
    errnoRet: errno.optional(),
    args: z.array(argSchema).optional(),
    comment: z.string().optional(),
    includes: filterSchema.optional(),
    excludes: filterSchema.optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.names === undefined && rule.name === undefined) ctx.addIssue({ code: "custom", message: 'a rule needs "names" (a list of syscall names)' });
    if (rule.names !== undefined && rule.name !== undefined) ctx.addIssue({ code: "custom", message: 'give either "names" or "name", not both' });
    if (rule.errnoRet !== undefined && rule.action !== "SCMP_ACT_ERRNO") {
      ctx.addIssue({ code: "custom", path: ["errnoRet"], message: "errnoRet is only valid with the action SCMP_ACT_ERRNO" });
    }
  });

export const seccompProfileSchema = z
  .strictObject({
    defaultAction: action,
    defaultErrnoRet: errno.optional(),
    architectures: z.array(architecture).optional(),
    archMap: z.array(z.strictObject({ architecture, subArchitectures: z.array(architecture).nullable().optional() })).optional(),
    syscalls: z.array(ruleSchema),
  })
  .superRefine((profile, ctx) => {
    if (profile.architectures?.length && profile.archMap?.length) {
      ctx.addIssue({ code: "custom", path: ["archMap"], message: 'give either "architectures" or "archMap", not both (Docker refuses both)' });
    }
    if (profile.defaultErrnoRet !== undefined && profile.defaultAction !== "SCMP_ACT_ERRNO") {
      ctx.addIssue({ code: "custom", path: ["defaultErrnoRet"], message: "defaultErrnoRet is only valid with the defaultAction SCMP_ACT_ERRNO" });
    }
  });

export type SeccompProfile = z.infer<typeof seccompProfileSchema>;
export type SeccompRule = SeccompProfile["syscalls"][number];
export type SeccompArg = NonNullable<SeccompRule["args"]>[number];
export type SeccompAction = SeccompProfile["defaultAction"];
export type SeccompArchitecture = NonNullable<SeccompProfile["architectures"]>[number];

/** The names a rule covers, whichever form it uses. */
export function ruleNames(rule: SeccompRule): string[] {
  return rule.names ?? (rule.name ? [rule.name] : []);
}
