import t from 'tap';
import { resilienceTest } from './suite.ts';

resilienceTest(t, 'Redis killed and restarted under load: every credential and event that got a 2xx is still there', () =>
  import('./scenarios/redis-restart.ts'),
);
