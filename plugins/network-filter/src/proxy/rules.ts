/**
 * The host rules of a filter (whitelist, blacklist) and of several filters that must all allow a
 * host (the engine's own and the operator's bounds).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */

export interface CompiledRule {
  source: string;
  re: RegExp;
}

/** Rules match the whole normalized host (anchored), case-insensitively. Throws, naming the pattern, on a bad one. */
export function compileRules(patterns: string[], list: string): CompiledRule[] {
  return patterns.map((source, index) => {
    try {
      return { source, re: new RegExp(`^(?:${source})$`, "i") };
    } catch (error) {
      throw new Error(`networkFilter.${list}[${index}]: invalid regular expression ${JSON.stringify(source)}: ${(error as Error).message}`, { cause: error });
    }
  });
}

export type RuleDecision = { allowed: true; rule: string | null } | { allowed: false; reason: string };

/**
 * One filter: blacklist first (a match blocks, whatever the whitelist says); then, when the
 * whitelist is not empty, the host must match one of its rules. `rule` is the whitelist rule that
 * matched (null under an empty whitelist). A match never opens a non-public address: only the
 * operator's `allowAddresses` does (chooseAddress).
 */
export function evaluateRules(host: string, rules: { whitelist: CompiledRule[]; blacklist: CompiledRule[] }): RuleDecision {
  for (const rule of rules.blacklist) {
    if (rule.re.test(host)) return { allowed: false, reason: `${host} matches blacklist rule /${rule.source}/` };
  }
  for (const rule of rules.whitelist) {
    if (rule.re.test(host)) return { allowed: true, rule: rule.source };
  }
  if (rules.whitelist.length > 0) {
    return { allowed: false, reason: `${host} matches no whitelist rule (${rules.whitelist.map((r) => `/${r.source}/`).join(", ")})` };
  }
  return { allowed: true, rule: null };
}

/**
 * Several filters that must all allow a host: the engine's own and its bounds (the operator's
 * filter a request narrowed). Every blacklist is checked before any whitelist, so a blocked host
 * is reported by the rule that blocks it. The decision names the innermost whitelist rule that matched.
 */
export function evaluateLayers(host: string, layers: { whitelist: CompiledRule[]; blacklist: CompiledRule[] }[]): RuleDecision {
  for (const layer of layers) {
    const blocked = evaluateRules(host, { whitelist: [], blacklist: layer.blacklist });
    if (!blocked.allowed) return blocked;
  }
  let rule: string | null = null;
  for (let i = layers.length - 1; i >= 0; i--) {
    const decision = evaluateRules(host, { whitelist: layers[i]!.whitelist, blacklist: [] });
    if (!decision.allowed) return decision;
    rule = rule ?? decision.rule;
  }
  return { allowed: true, rule };
}
