import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node APIs, no I/O, no wall clock.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'child_process', 'net', 'http', 'https', 'crypto', 'os', 'path'],
              message: 'Workflows do no I/O: put it in an activity.',
            },
            {
              group: ['../activities/*/**', 'ssh2', 'dockerode'],
              message: 'Workflows call activities through proxyActivities, never directly.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
      ],
    },
  },
  // The layers (README, Architecture): each imports only those below it.
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../*',
                '!../schema',
                '!../schema/**',
                'node:*',
                '@temporalio/client',
                '@temporalio/worker',
              ],
              message: 'protocol/ holds definitions only: schema/, zod and @temporalio/common|workflow.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/workflows',
                '**/workflows/**',
                '**/client/**',
                '**/api/**',
                '**/workers/**',
                '**/cli/**',
              ],
              message: 'Activities import only schema/, protocol/ and each other.',
            },
          ],
        },
      ],
    },
  },
  {
    // processes: the API and the workers never import each other (npm start's platform.ts runs both)
    files: ['api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/workers/**'], message: 'Share with the workers through client/ or config/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['workers/**/*.ts'],
    ignores: ['workers/platform.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/**'], message: 'Share with the API through client/ or config/.' }] },
      ],
    },
  },
  {
    files: ['cli/**/*.ts', 'client/**/*.ts', 'config/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/api/**', '**/workers/**', '**/cli/**'],
              message: 'Processes share through client/ or config/.',
            },
          ],
        },
      ],
    },
  },
);
