import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config/load.ts';
import { brandStylesheet, contrastRatio, logoOrigin } from '../../../src/views/branding.ts';
import { layout, html, pageCspFor } from '../../../src/views/html.ts';

// The branding key: what is refused at start (and why, naming the key), what the pages make of it.
describe('branding in the configuration', () => {
  const load = (branding: Record<string, unknown>) => loadConfig({ env: {}, overrides: { branding } });

  it('defaults to Tessera, unbranded', () => {
    expect(loadConfig({ env: {} }).branding).toEqual({ productName: 'Tessera' });
  });

  it('takes a full branding, colours lower-cased', () => {
    const config = load({ productName: 'Zenodo', logoUrl: 'https://cdn.example.org/logo.svg', primaryColor: '#0B5394', accentColor: '#F1C232', supportUrl: '/help', supportEmail: 'help@example.org' });
    expect(config.branding).toEqual({ productName: 'Zenodo', logoUrl: 'https://cdn.example.org/logo.svg', primaryColor: '#0b5394', accentColor: '#f1c232', supportUrl: '/help', supportEmail: 'help@example.org' });
  });

  it('refuses a primary colour that white text or the page background is not readable with (below 4.5:1), naming the key', () => {
    expect(contrastRatio('#4a90e2', '#ffffff')).toBeLessThan(4.5);
    expect(() => load({ productName: 'X', primaryColor: '#4a90e2' })).toThrow(/branding\.primaryColor: has too little contrast \(at least 4\.5:1 with white and with the page's #f5f7fa/);
    // The boundary is the page's background, darker than white: #717171 is 4.55:1 on it, #727272 4.48:1
    // (and #767676, 4.54:1 on white, only 4.23:1 on it).
    expect(load({ productName: 'X', primaryColor: '#717171' }).branding.primaryColor).toBe('#717171');
    expect(() => load({ productName: 'X', primaryColor: '#727272' })).toThrow(/branding\.primaryColor/);
    expect(() => load({ productName: 'X', primaryColor: '#767676' })).toThrow(/branding\.primaryColor/);
  });

  it.each([
    [{ primaryColor: 'blue' }, /branding\.primaryColor: must be a colour as #rrggbb/],
    [{ accentColor: '#fff' }, /branding\.accentColor: must be a colour as #rrggbb/],
    [{ logoUrl: 'http://cdn.example.org/logo.png' }, /branding\.logoUrl: must be an https:\/\/ URL or a path on this site/],
    [{ logoUrl: '//cdn.example.org/logo.png' }, /branding\.logoUrl: must be an https:\/\/ URL or a path on this site/],
    [{ supportUrl: 'javascript:alert(1)' }, /branding\.supportUrl: must be an https:\/\/ URL or a path on this site/],
    [{ supportEmail: 'not an address' }, /branding\.supportEmail: must be an e-mail address/],
    [{ logoFile: '/etc/tessera/logo.bmp' }, /branding\.logoFile: must end in one of/],
    [{ logoFile: '/etc/tessera/logo.png', logoUrl: '/logo.png' }, /branding\.logoFile: give either logoUrl or logoFile, not both/],
    [{ productName: 'Zen\u202Eodo' }, /branding\.productName: must not contain control or invisible formatting characters/],
    [{ productName: '' }, /branding\.productName/],
  ])('refuses %j', (branding, message) => {
    expect(() => load({ productName: 'X', ...branding })).toThrow(message);
  });

  it('allows a logo on another origin in img-src, and only there', () => {
    const elsewhere = { productName: 'Zenodo', logoUrl: 'https://cdn.example.org/brand/logo.svg' };
    expect(logoOrigin(elsewhere)).toBe('https://cdn.example.org');
    expect(pageCspFor(elsewhere)).toContain("img-src 'self' data: https://cdn.example.org;");
    expect(pageCspFor(elsewhere)).toContain("default-src 'none'");
    expect(pageCspFor({ productName: 'Zenodo', logoUrl: '/assets/logo' })).toContain("img-src 'self' data:;");
    expect(pageCspFor({ productName: 'Zenodo' })).toContain("img-src 'self' data:;");
  });

  it('puts the name in the title, header and footer, and the colours in brand.css', () => {
    const page = layout('Sign in', html`<h1>Sign in</h1>`, { branding: { productName: 'Zenodo <Sign-in>', supportUrl: 'https://help.example.org/', primaryColor: '#0b5394' } });
    expect(page).toContain('<title>Sign in · Zenodo &lt;Sign-in&gt;</title>');
    expect(page).toContain('<span>Zenodo &lt;Sign-in&gt;</span>');
    expect(page).toContain('<a href="https://help.example.org/">Help and support</a>');
    expect(page).toContain('<link rel="stylesheet" href="/assets/brand.css">');
    expect(layout('Sign in', html``)).not.toContain('brand.css');
    expect(brandStylesheet({ productName: 'Z', primaryColor: '#0b5394', accentColor: '#f1c232' })).toBe(':root { --accent: #0b5394; --accent-dark: #094276; }\n.bar { border-bottom: 4px solid #f1c232; }\n');
  });
});
