// Lint rules: typescript-eslint's recommended type-aware set, plus the fences
// that keep each part where it runs: the engine free of VS Code (the CLI and
// the tests drive it headless), the extension host off the engine (it talks to
// the engine process through the protocol only, so onnxruntime never loads in
// the host), and the webviews off Node and VS Code (they run in a browser frame).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      '.cache/**',
      'models/**',
      'test/fixtures/**',
      '**/*.mjs',
      '**/*.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'vscode', message: 'src/engine must not depend on VS Code.' }] },
      ],
    },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '/engine/(?!host/protocol$)',
              message:
                'The extension host talks to the engine process through engineClient.ts and the protocol only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/webview/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'vscode',
              message: 'Webviews run in a browser frame; talk to the host through protocol.ts.',
            },
          ],
          patterns: [
            { regex: '^node:', message: 'Webviews run in a browser frame, without Node.' },
            {
              regex: '/(engine|extension)/',
              message: 'Webviews share only protocol.ts and src/shared with the host.',
            },
          ],
        },
      ],
    },
  },
);
