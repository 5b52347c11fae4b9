/**
 * Runs one autocannon load in its own process, so the load generator never shares an event loop (or a
 * core's time slice) with the code under test. Reads its options as JSON from argv, prints the result as JSON.
 */
import autocannon from 'autocannon';

const options = JSON.parse(process.argv[2] ?? '{}') as autocannon.Options;
const result = await autocannon(options);
process.stdout.write(`${JSON.stringify(result)}\n`);
