// autocannon ships no types; this is the slice of its programmatic API the benchmarks use.
declare module 'autocannon' {
  interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    connections?: number;
    duration?: number;
  }
  function autocannon(options: Options): Promise<unknown>;
  namespace autocannon {
    export type { Options };
  }
  export default autocannon;
}
