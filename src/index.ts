// The package's main entry: run Tessera in a process of one's own (startTessera), or open its
// durable services without HTTP (openCore), as the admin CLI does.
export { openCore, type Core, type OnlineCore, type OpenCoreOptions } from './core.ts';
export { startTessera, type RunningTessera } from './server.ts';
