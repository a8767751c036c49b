import { describe, expect, it } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import { lowerHashingPriority, threadNiceness } from '../../../../src/accounts/hashing/hashing-priority.ts';
import { createLogger } from '../../../../src/shared/logger.ts';

// The password-hashing threads give way to the event loop (Linux, where nice is per thread).
describe('the priority of the password-hashing threads', () => {
  it('lowers every libuv threadpool thread of the process, and nothing else', async () => {
    if (process.platform !== 'linux') return;
    const changed = await lowerHashingPriority(19, createLogger({ level: 'silent' }));
    expect(changed).toBeGreaterThan(0);
    const tasks = await readdir('/proc/self/task');
    const byName = await Promise.all(tasks.map(async (task) => ({ task, name: (await readFile(`/proc/self/task/${task}/comm`, 'utf8')).trim() })));
    const workers = byName.filter((t) => t.name === 'libuv-worker');
    expect(workers).toHaveLength(changed);
    for (const { task } of workers) expect(await threadNiceness(task)).toBe(19);
    expect(await threadNiceness(String(process.pid))).toBe(0); // the event loop's thread
  });

  it('leaves them alone with niceness 0', async () => {
    expect(await lowerHashingPriority(0, createLogger({ level: 'silent' }))).toBe(0);
  });
});
