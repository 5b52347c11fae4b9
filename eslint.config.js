// ESLint cannot run without a config file; this is the one root config the project keeps.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', '.tap/', 'coverage/', 'openapi/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through loadConfig (src/config.ts).' }],
    },
  },
  {
    // Entry points hand the environment to loadConfig; tests and benchmarks set up child processes.
    files: ['src/main.ts', 'src/cli/**', 'src/sandbox/main.ts', 'test/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Benchmarks run outside tap: importing tap (directly or through test/helper.ts) starts a root test
    // whose 30 s timeout kills the benchmark.
    files: ['test/bench/**', 'test/fixtures/test-redis.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['tap', '@tapjs/*', '**/helper.ts'], message: 'Benchmarks run outside tap; use test/fixtures/test-redis.ts.' }] }],
    },
  },
  {
    // The Dashboard and hosted page: plain ES modules that run in the browser, not in Node.
    files: ['src/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'history', 'navigator', 'fetch', 'FormData', 'URLSearchParams', 'Node', 'CSS', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'].map(
          (name) => [name, 'readonly'],
        ),
      ),
    },
  },
);
