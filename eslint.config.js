import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The server's layers, lowest first (docs/architecture.md draws them). A folder may import its own
 * files and the folders of lower layers, never a folder of its own layer or of a higher one. Above
 * the last layer sit the composition roots (src/*.ts), the CLI and the demo, which may import
 * anything. The published packages (verifier/, client/) import nothing from the rest of src/.
 */
const LAYERS = [
  ['shared', 'views', 'metrics'],
  ['config'],
  ['store'],
  ['cache', 'credentials'],
  ['audit'],
  ['accounts'],
  ['clients', 'personal-tokens', 'sessions'],
  ['oauth'],
  ['introspection'],
  ['http'],
  ['routes'],
];
const PUBLISHED = ['verifier', 'client'];
const TOP = ['cli', 'demo'];

const everyFolder = [...LAYERS.flat(), ...PUBLISHED, ...TOP];
// A new folder must take its place in the layers first: an unlisted one would escape every zone.
const unlisted = readdirSync(new URL('./src', import.meta.url), { withFileTypes: true }).filter((entry) => entry.isDirectory() && !everyFolder.includes(entry.name));
if (unlisted.length) throw new Error(`eslint.config.js: give src/${unlisted[0].name}/ a layer in LAYERS (docs/architecture.md)`);
const layerZones = LAYERS.flatMap((layer, index) =>
  layer.map((folder) => ({
    target: `./src/${folder}`,
    from: [...layer.filter((peer) => peer !== folder), ...LAYERS.slice(index + 1).flat(), ...PUBLISHED, ...TOP].map((name) => `./src/${name}`),
    message: `src/${folder}/ may import only folders of lower layers, not its peers or anything above: see the layers in docs/architecture.md.`,
  })),
);
const topLevelFiles = './src/*.ts';
const zones = [
  ...layerZones,
  // Nothing below the composition roots imports them.
  ...LAYERS.flat().map((folder) => ({ target: `./src/${folder}`, from: topLevelFiles, message: 'Only the CLI and the demo build on the composition roots.' })),
  ...PUBLISHED.map((folder) => ({
    target: `./src/${folder}`,
    from: './src',
    except: [`./${folder}`],
    message: `src/${folder}/ is published on its own (tessera/${folder}): it imports nothing from the server.`,
  })),
  // The demo resource server is what a resource server's code looks like: the verifier only.
  { target: './src/demo', from: './src', except: ['./demo', './verifier'], message: 'The demo uses tessera/verifier only, as a resource server would.' },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'var/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    rules: { 'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones }] },
  },
  { files: ['src/cli/**', 'test/**', 'bin/**', '.ci/**'], rules: { 'no-console': 'off' } },
);
