import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { defineOperation, route } from '../http/api-operation.ts';
import { errorResponse, SERVER_FAILURES, VALIDATION_FAILED } from '../http/common-responses.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import type { LeakReports } from '../leaked-tokens/leak-reports.ts';
import { KEY_ID, KeysUnavailableError, type ReporterKeys } from '../leaked-tokens/reporter-keys.ts';
import { AppError } from '../shared/errors.ts';

// POST /api/v1/leaked-tokens/{reporter}: where a secret scanner reports tokens it found in public
// (GitHub's secret-scanning partner format; docs/leaked-tokens.md). The steps run in this order,
// and nothing of the body is parsed before its signature verified: the reporter is configured, the
// body is JSON, the signature headers are there, the body is within the limit, the signature
// verifies over the raw bytes with the reporter's published key, then the JSON is parsed and
// validated.

const KEY_ID_HEADER = 'github-public-key-identifier';
const SIGNATURE_HEADER = 'github-public-key-signature';
/** Base64 of a DER ECDSA P-256 signature (at most 72 bytes) with room to spare. */
const SIGNATURE = /^[A-Za-z0-9+/]{1,256}={0,2}$/;

const reportSchema = z.object({
  token: z.string().max(1000).meta({ description: 'The value found.' }),
  type: z.string().max(200).meta({ description: 'The name of the pattern that matched, as registered with the reporter.' }),
  url: z.string().max(4096).meta({ description: 'Where it was found (may be empty).' }),
  source: z.string().max(200).meta({ description: 'What kind of place that is: `content`, `commit`, `issue_comment`, `gist_content`, … or `unknown`.' }),
});

const verdictSchema = z.object({
  token_raw: z.string().meta({ description: 'The value reported, as it was sent.' }),
  token_type: z.string(),
  label: z.enum(['true_positive', 'false_positive']).meta({ description: '`true_positive`: a Tessera credential, now revoked (or revoked before). `false_positive`: not one.' }),
});

/** The most tokens a report may hold whatever the configuration says (`leakedTokens.maxTokensPerReport`, 1000 by default, is checked too). */
export const MAX_TOKENS_PER_REPORT = 10_000;

export const reportLeakedTokensOperation = defineOperation({
  method: 'post',
  path: '/api/v1/leaked-tokens/:reporter',
  operationId: 'reportLeakedTokens',
  summary: 'Report Tessera tokens found in public: each one is revoked at once',
  description:
    "For secret scanners, in GitHub's secret-scanning partner format: a signed JSON array of the tokens found. " +
    '`Github-Public-Key-Identifier` names the key (one of those the reporter publishes) and `Github-Public-Key-Signature` is the base64 ' +
    'DER ECDSA P-256 SHA-256 signature of the raw body. Served only where `leakedTokens.enabled` is set, one path per configured reporter. ' +
    'The answer lists each report in order, labelled; it never says whose a token was. See docs/leaked-tokens.md.',
  tag: 'Leaked tokens',
  credentials: [],
  params: z.object({ reporter: z.string().meta({ description: 'The configured reporter (`github`).' }) }),
  body: { schema: z.array(reportSchema).max(MAX_TOKENS_PER_REPORT).meta({ description: 'The tokens found: at most `leakedTokens.maxTokensPerReport`.' }), required: true },
  responses: {
    200: { description: 'One verdict per report, in the order of the reports.', body: z.array(verdictSchema) },
    400: VALIDATION_FAILED,
    401: errorResponse('No signature, a key the reporter does not publish, or a signature that does not verify.'),
    404: errorResponse('No such reporter is configured.'),
    413: errorResponse('The body is larger than `leakedTokens.maxBodyBytes`.'),
    415: errorResponse('The body is not `application/json`.'),
    ...SERVER_FAILURES,
  },
});

export interface LeakedTokenRouteDependencies {
  /** The configured reporters' keys, by name. */
  reporters: ReadonlyMap<string, ReporterKeys>;
  leakReports: LeakReports;
  maxBodyBytes: number;
  maxTokensPerReport: number;
}

type Signed = { reporterKeys?: ReporterKeys };

/**
 * Mounted ahead of the app's body parsers (http/app.ts rawBodyRoutes): the signature covers the
 * bytes as sent, so this router reads the body itself.
 */
export function createLeakedTokenRoutes({ reporters, leakReports, maxBodyBytes, maxTokensPerReport }: LeakedTokenRouteDependencies): Router {
  const router = Router();

  const knownReporter: RequestHandler = (req, res, next) => {
    const keys = reporters.get(String(req.params.reporter));
    if (!keys) {
      next(AppError.notFound('No such reporter.'));
      return;
    }
    (res.locals as Signed).reporterKeys = keys;
    next();
  };

  const jsonOnly: RequestHandler = (req, _res, next) => {
    next(req.is('application/json') ? undefined : new AppError(415, 'unsupported_media_type', 'Reports must be application/json.'));
  };

  // The bytes as sent (no decompression: the signature is over what came on the wire).
  const rawBody = express.raw({ type: () => true, limit: maxBodyBytes, inflate: false });

  // Before the body is read: an unsigned request costs no buffering.
  const signed: RequestHandler = (req, _res, next) => {
    const keyId = req.get(KEY_ID_HEADER);
    const signature = req.get(SIGNATURE_HEADER);
    if (!keyId || !signature) next(new AppError(401, 'signature_missing', `Reports must be signed: send ${headerName(KEY_ID_HEADER)} and ${headerName(SIGNATURE_HEADER)}.`));
    else if (!KEY_ID.test(keyId)) next(new AppError(401, 'unknown_key', `${headerName(KEY_ID_HEADER)} is not a key identifier.`));
    else if (!SIGNATURE.test(signature)) next(new AppError(401, 'invalid_signature', `${headerName(SIGNATURE_HEADER)} is not base64.`));
    else next();
  };

  const verifiedSignature: RequestHandler = async (req, res, next) => {
    try {
      const keyId = req.get(KEY_ID_HEADER)!;
      const signature = req.get(SIGNATURE_HEADER)!;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let outcome: Awaited<ReturnType<ReporterKeys['verify']>>;
      try {
        outcome = await (res.locals as Signed).reporterKeys!.verify(keyId, Buffer.from(signature, 'base64'), body);
      } catch (error) {
        if (error instanceof KeysUnavailableError) throw new AppError(503, 'unavailable', "The reporter's public keys cannot be read right now. Try again later.", { detail: error.message, headers: { 'Retry-After': '60' } });
        throw error;
      }
      if (outcome === 'unknown_key') throw new AppError(401, 'unknown_key', `The reporter publishes no key with the identifier in ${headerName(KEY_ID_HEADER)}.`);
      if (outcome === 'invalid') throw new AppError(401, 'invalid_signature', 'The signature does not verify over the body with that key.');
      // Verified: only now is the body read as JSON (validated next by the declaration's schema).
      try {
        req.body = JSON.parse(body.toString('utf8')) as unknown;
      } catch {
        throw AppError.badRequest('The body is not valid JSON.');
      }
      if (Array.isArray(req.body) && req.body.length > maxTokensPerReport) {
        throw AppError.validation([{ field: '(body)', code: 'too_big', message: `At most ${maxTokensPerReport} tokens in one report.` }]);
      }
      next();
    } catch (error) {
      next(error);
    }
  };

  route(router, reportLeakedTokensOperation, [knownReporter, jsonOnly, signed, rawBody, verifiedSignature], async (req, res, { params, body }) => {
    const verdicts = await leakReports.handle(params.reporter, body);
    res.set('Cache-Control', 'no-store').json(verdicts satisfies z.input<typeof verdictSchema>[]);
  });
  router.all('/api/v1/leaked-tokens/:reporter', methodNotAllowed(['POST']));
  return router;
}

/** A header's name as GitHub writes it. */
function headerName(lower: string): string {
  return lower.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}
