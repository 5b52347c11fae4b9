/** Nearest-rank percentiles of a sample (sorted copy; the input is left alone). */
export function percentiles(values: number[], ranks: number[] = [50, 99]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  const result: Record<string, number> = {};
  for (const rank of ranks) {
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((rank / 100) * sorted.length) - 1));
    result[`p${rank}`] = sorted[index] ?? Number.NaN;
  }
  result.max = sorted[sorted.length - 1] ?? Number.NaN;
  return result;
}
