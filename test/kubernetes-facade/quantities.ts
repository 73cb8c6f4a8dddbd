/** Kubernetes resource quantities as numbers: "250m" CPUs, "512Mi" / "1G" / "1048576" bytes. */
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

export function cpus(quantity: string): number {
  if (quantity.endsWith("m")) return Number(quantity.slice(0, -1)) / 1000;
  return Number(quantity);
}

export function bytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!match) throw new Error(`not a quantity: ${quantity}`);
  const unit = match[2];
  return Math.round(Number(match[1]) * (unit ? (BINARY[unit] ?? DECIMAL[unit]!) : 1));
}
