/** Human sizes ("512m", "1g", "64k", or a byte count) to bytes, 1024-based as Docker's CLI does. */
const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 && Number.isInteger(value) ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(value);
  if (!match) return undefined;
  const bytes = Math.floor(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
  return bytes > 0 ? bytes : undefined;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  // Move up while the value would print as 1024 or more once rounded.
  while (unit < units.length - 1 && Number(value.toFixed(value < 10 ? 1 : 0)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Docker refuses a smaller memory limit ("Minimum memory limit allowed is 6MB", Docker 26). */
export const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
