import pino from 'pino';
import t from 'tap';
import { startPeriodicPass } from '../../workers/periodic-pass.ts';

function capturingLogger() {
  const lines: { msg: string }[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) });
  return { logger, lines };
}

t.test('passes never overlap: ticks during a running pass are skipped, and the pass after a failure runs', async (t) => {
  const { logger, lines } = capturingLogger();
  let started = 0;
  let running = 0;
  let maxRunning = 0;
  const periodic = startPeriodicPass('test', 5, logger, async () => {
    started += 1;
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((resolve) => setTimeout(resolve, 30));
    running -= 1;
    if (started === 1) throw new Error('first pass fails');
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  await periodic.close();
  t.equal(maxRunning, 1, 'one pass at a time');
  t.ok(started >= 2 && started <= 4, `passes ran back to back, not once per 5 ms tick (${started})`);
  t.match(lines, [{ msg: 'test pass failed' }], 'the failure is logged once');
});

t.test('close aborts the running pass and waits for it; no pass starts after', async (t) => {
  const { logger } = capturingLogger();
  let started = 0;
  let finishedAfterAbort = false;
  const periodic = startPeriodicPass('test', 5, logger, async (stop) => {
    started += 1;
    await new Promise((resolve) => stop.addEventListener('abort', resolve));
    finishedAfterAbort = true;
  });
  await periodic.close();
  t.ok(finishedAfterAbort, 'close returned after the pass had seen the abort');
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(started, 1);
});
