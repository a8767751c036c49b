// The operator's branding (docs/branding.md): validated here, at boot, so that every page can
// trust it: colours are #rrggbb, links are https or on this site, and the primary colour keeps
// white text on buttons, and links on the cards and on the page around them, readable (WCAG AA, 4.5:1).
import { extname } from 'node:path';
import { z } from 'zod';
import { contrastRatio } from '../views/branding.ts';

/** WCAG 2.1 AA for normal text: the primary colour carries white button labels and is the link colour. */
export const MIN_CONTRAST = 4.5;
/** The page's background around the cards (stylesheet.ts --bg), where the footer's links are: darker than white. */
export const PAGE_BACKGROUND = '#f5f7fa';

/** The logo files Tessera serves at /assets/logo, by extension. */
export const LOGO_TYPES: Record<string, string> = { '.png': 'image/png', '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif' };

const HEX = /^#[0-9a-fA-F]{6}$/;

/** An https: URL, or a path on this site (one leading slash, never `//`, which would be another host). */
const linkOrPath = z.string().refine(
  (value) => {
    if (/^\/(?![/\\])/.test(value)) return !/[\s"<>\\]/.test(value);
    try {
      return new URL(value).protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'must be an https:// URL or a path on this site starting with /' },
);

const colour = z
  .string()
  .regex(HEX, { message: 'must be a colour as #rrggbb' })
  .transform((value) => value.toLowerCase());

export const brandingSchema = z
  .object({
    /** The product people sign in to: page titles, headers, the CLI's prompts. */
    productName: z
      .string()
      .trim()
      .min(1)
      .max(60)
      .regex(/^[^\p{Cc}\p{Cf}]*$/u, { message: 'must not contain control or invisible formatting characters' }),
    logoUrl: linkOrPath.optional(),
    /** A logo file on this machine, read at boot and served at /assets/logo (instead of logoUrl). */
    logoFile: z
      .string()
      .min(1)
      .refine((path) => extname(path).toLowerCase() in LOGO_TYPES, { message: `must end in one of ${Object.keys(LOGO_TYPES).join(' ')}` })
      .optional(),
    primaryColor: colour
      .refine((value) => contrastRatio(value, '#ffffff') >= MIN_CONTRAST && contrastRatio(value, PAGE_BACKGROUND) >= MIN_CONTRAST, {
        message: `has too little contrast (at least ${MIN_CONTRAST}:1 with white and with the page's ${PAGE_BACKGROUND} is needed: it is the colour of buttons with white text and of links); choose a darker shade`,
      })
      .optional(),
    accentColor: colour.optional(),
    supportUrl: linkOrPath.optional(),
    supportEmail: z.email({ message: 'must be an e-mail address' }).optional(),
  })
  .refine((branding) => !(branding.logoUrl && branding.logoFile), { message: 'give either logoUrl or logoFile, not both', path: ['logoFile'] });

export type BrandingConfig = z.infer<typeof brandingSchema>;
