import { builtinModules } from 'node:module'
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import pluginVue from 'eslint-plugin-vue'
import vueParser from 'vue-eslint-parser'

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)]
const layers = ['shared', 'core', 'main', 'preload', 'host', 'cli', 'renderer']

/** Forbids importing the given layers of ours (by relative path) and the given packages. */
function layerRule(forbiddenLayers, forbiddenPackages, why) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: forbiddenPackages.map((name) => ({ name, message: why })),
        // Relative imports only: `@vueuse/core` is a package, `../../core/x` is our layer.
        patterns: forbiddenLayers.map((layer) => ({
          regex: `^\\.{1,2}/(.*/)?${layer}(/|$)`,
          message: `${why} (layering: see ARCHITECTURE.md)`
        }))
      }
    ]
  }
}

const except = (...keep) => layers.filter((l) => !keep.includes(l))

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'test-results/**', 'playwright-report/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parser: vueParser, parserOptions: { parser: tseslint.parser, sourceType: 'module' } }
  },
  {
    // TypeScript already checks names; the core rule does not know DOM or Node types.
    files: ['**/*.ts', '**/*.vue'],
    rules: { 'no-undef': 'off' }
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/html-indent': 'off',
      'vue/html-closing-bracket-newline': 'off'
    }
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' }
  },
  {
    files: ['src/shared/**'],
    rules: layerRule(except('shared'), [...nodeBuiltins, 'electron'], 'src/shared imports nothing of ours outside shared, nor Node or Electron')
  },
  {
    files: ['src/core/**'],
    rules: layerRule(except('shared', 'core'), ['electron'], 'src/core is plain Node: it imports only shared and core, never Electron')
  },
  {
    files: ['src/preload/**'],
    rules: layerRule(except('shared', 'preload'), [], 'src/preload imports only shared')
  },
  {
    files: ['src/main/**', 'src/host/**', 'src/cli/**'],
    rules: layerRule(['renderer', 'preload'], [], 'main, host and cli import core and shared, never the renderer or preload')
  },
  {
    files: ['src/host/**', 'src/cli/**'],
    rules: layerRule(['renderer', 'preload', 'main'], ['electron'], 'host and cli run without Electron')
  },
  {
    files: ['src/renderer/**'],
    rules: layerRule(except('shared', 'renderer'), [...nodeBuiltins, 'electron'], 'the renderer talks to the studio only through its api client: no core, Node or Electron')
  }
)
