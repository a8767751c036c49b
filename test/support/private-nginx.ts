import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Debian's nginx (nginx-light), which the gateway tests run. */
export const NGINX = '/usr/sbin/nginx';

/**
 * Writes `dir`/nginx.conf around `http` (the inside of the http block: servers, upstreams) for an
 * nginx of a test's own: in the foreground, its pid, log and temporary files in `dir`; then starts
 * it. Its error log reaches `onLog`.
 */
export async function startPrivateNginx(dir: string, http: string, onLog: (text: string) => void, workerConnections = 256): Promise<ChildProcess> {
  await mkdir(join(dir, 'temp'), { recursive: true });
  await writeFile(
    join(dir, 'nginx.conf'),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
${http}
}
`,
  );
  const nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stderr!.on('data', (d: Buffer) => onLog(d.toString()));
  return nginx;
}
