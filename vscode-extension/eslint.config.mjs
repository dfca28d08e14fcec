// ESLint for the extension's TypeScript (`npm run lint`, also run by `make lint`): the recommended rules
// of ESLint and typescript-eslint; type checking itself is tsc's (`npm run lint` runs both).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    // What the repository ignores (.gitignore): build outputs, bundled wheels, test runs.
    { ignores: ['out/**', 'node_modules/**', 'media/vendor/**', 'bundled/**', '*.vsix', 'e2e/.run/**', 'e2e/screenshots/**', 'e2e/code-server/**'] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ['**/*.ts'],
        rules: {
            // `_name` marks a parameter or destructured value that is deliberately unused.
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
        },
    },
    {
        // The Stacks picture's webview script, run by the browser inside VS Code.
        files: ['media/**/*.js'],
        languageOptions: { globals: { window: 'readonly', document: 'readonly', XMLSerializer: 'readonly', acquireVsCodeApi: 'readonly' } },
    },
    {
        // Node scripts of the build (copying the webview libraries).
        files: ['scripts/**/*.js'],
        languageOptions: { globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
        rules: { '@typescript-eslint/no-require-imports': 'off' },
    },
);
