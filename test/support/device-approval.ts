import { expect } from '@jest/globals';
import { HttpBrowser } from './http-browser.ts';

/**
 * Logs in and approves (or denies) a device code through the verification pages, as a person
 * would; with `via`, every page of `base` is asked of that node (see HttpBrowser).
 */
export async function approveDevice(base: string, userCode: string, username: string, password: string, decision: 'approve' | 'deny' = 'approve', via?: string) {
  const browser = new HttpBrowser(base, {}, via ? { from: base, to: via } : undefined);
  const input = await browser.request('/device');
  expect(input.status).toBe(200);
  expect(input.html).toMatch(/Enter the code shown/);
  const confirm = await browser.submit(input, { user_code: userCode.toLowerCase().replace('-', '') });
  expect(confirm.html).toMatch(/Confirm the device/);
  const consent = await browser.submit(confirm, { confirm: 'yes' });
  expect(consent.url).toMatch(/\/interaction\//);
  const done = await browser.submit(consent, { username, password, decision });
  return { consent, done };
}
