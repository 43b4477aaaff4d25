/** What every benchmark module returns: printable lines plus the numbers behind them. */
export interface BenchResult {
  name: string;
  lines: string[];
  metrics: Record<string, number>;
}
