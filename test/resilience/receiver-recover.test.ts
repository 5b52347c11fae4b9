import t from 'tap';
import { resilienceTest } from './suite.ts';

resilienceTest(t, 'receiver down for the whole retry schedule, then up: recover delivers everything', () => import('./scenarios/receiver-recover.ts'));
