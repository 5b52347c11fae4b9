import t from 'tap';
import { resilienceTest } from './suite.ts';

resilienceTest(t, 'workers SIGKILLed in a loop during webhook deliveries: every event arrives', () => import('./scenarios/worker-kill.ts'));
