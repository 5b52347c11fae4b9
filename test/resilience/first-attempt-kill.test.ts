import t from 'tap';
import { resilienceTest } from './suite.ts';

resilienceTest(t, 'workers SIGKILLed during the first attempts of their own events: every event arrives', () => import('./scenarios/first-attempt-kill.ts'));
