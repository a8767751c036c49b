import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The server's layers, lowest first (docs/architecture.md draws them). A folder may import its own
 * files and the folders of lower layers, never a folder of its own layer or of a higher one. Above
 * the last layer sit the composition roots (src/*.ts), the CLI and the demo, which may import
 * anything. The published packages (packages/verifier, packages/client) import nothing of the server
 * and nothing of each other; of the server, only the CLI and the demo use them, by package name.
 */
const LAYERS = [
  ['shared', 'views', 'metrics'],
  ['config'],
  ['store'],
  ['cache', 'credentials'],
  ['audit'],
  ['accounts'],
  ['clients', 'personal-tokens', 'sessions', 'second-factors'],
  ['identity-providers'],
  ['oauth'],
  ['introspection', 'leaked-tokens'],
  ['http'],
  ['routes'],
];
const TOP = ['cli', 'demo'];
/** The workspace packages (packages/*), each with the dependencies its package.json allows. */
const PACKAGES = ['verifier', 'client'];

const everyFolder = [...LAYERS.flat(), ...TOP];
// A new folder must take its place in the layers first: an unlisted one would escape every zone.
const unlisted = readdirSync(new URL('./src', import.meta.url), { withFileTypes: true }).filter((entry) => entry.isDirectory() && !everyFolder.includes(entry.name));
if (unlisted.length) throw new Error(`eslint.config.js: give src/${unlisted[0].name}/ a layer in LAYERS (docs/architecture.md)`);
const layerZones = LAYERS.flatMap((layer, index) =>
  layer.map((folder) => ({
    target: `./src/${folder}`,
    from: [...layer.filter((peer) => peer !== folder), ...LAYERS.slice(index + 1).flat(), ...TOP].map((name) => `./src/${name}`),
    message: `src/${folder}/ may import only folders of lower layers, not its peers or anything above: see the layers in docs/architecture.md.`,
  })),
);
const topLevelFiles = './src/*.ts';
const zones = [
  ...layerZones,
  // Nothing below the composition roots imports them.
  ...LAYERS.flat().map((folder) => ({ target: `./src/${folder}`, from: topLevelFiles, message: 'Only the CLI and the demo build on the composition roots.' })),
  // The demo resource server is what a resource server's code looks like: the verifier only.
  { target: './src/demo', from: './src', except: ['./demo'], message: 'The demo uses @tessera/verifier only, as a resource server would.' },
  // A package is installed without the server: it reaches into nothing outside its own folder.
  ...PACKAGES.map((name) => ({
    target: `./packages/${name}`,
    from: '.',
    except: [`./packages/${name}`, './node_modules'],
    message: `packages/${name} is installed on its own (@tessera/${name}): it imports nothing of the server or of the other package.`,
  })),
];

export default tseslint.config(
  { ignores: ['**/dist/', 'node_modules/', 'var/', 'coverage/'] },
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
    files: ['src/**/*.ts', 'packages/*/src/**/*.ts'],
    plugins: { 'import-x': importX },
    rules: { 'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones }] },
  },
  // Only the CLI (the client) and the demo (the verifier) build on the packages; the server's layers do not.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/demo/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['@tessera/*'], message: 'The server\'s layers do not use the published packages: only the CLI and the demo do.' }] }] },
  },
  { files: ['src/demo/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [{ name: '@tessera/client', message: 'The demo uses @tessera/verifier only, as a resource server would.' }] }] } },
  // What each package's code may import at run time is what its package.json declares (the verifier: jose; the client: nothing).
  ...PACKAGES.map((name) => ({
    files: [`packages/${name}/src/**/*.ts`],
    plugins: { 'import-x': importX },
    rules: { 'import-x/no-extraneous-dependencies': ['error', { packageDir: `${import.meta.dirname}/packages/${name}`, devDependencies: false, peerDependencies: true, includeTypes: true }] },
  })),
  { files: ['src/cli/**', 'test/**', 'bin/**', '.ci/**'], rules: { 'no-console': 'off' } },
);
