/**
 * DEMO ONLY, not part of Tessera's server: an in-memory repository API (deposits that become
 * published records) protected by `@tessera/verifier`, as a resource server would use it.
 *
 *   GET  /api/records, /api/records/:id            read
 *   GET  /api/deposits, /api/deposits/:id          read             (the caller's own deposits)
 *   POST /api/deposits, PUT /api/deposits/:id      deposit:write
 *   POST /api/deposits/:id/actions/publish         deposit:actions  (the deposit becomes a record)
 */
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { sendError, type FieldError, type TesseraPrincipal, type TesseraVerifier } from '@tessera/verifier';

interface Owner {
  sub: string;
  username: string | null;
}

interface Deposit {
  id: string;
  title: string;
  description: string;
  creators: string[];
  owner: Owner;
  created: string;
  updated: string;
}

interface PublishedRecord {
  id: string;
  title: string;
  description: string;
  creators: string[];
  owner: Owner;
  created: string;
  published: string;
}

/** A deposit's metadata: the whole of it with POST and PUT. Unknown fields are refused. */
const depositInput = z.strictObject({
  title: z.string().trim().min(1).max(200),
  description: z.string().max(10_000).default(''),
  creators: z.array(z.string().trim().min(1).max(200)).max(100).default([]),
});

export interface DemoRepositoryOptions {
  verifier: TesseraVerifier;
  /** express "trust proxy" (decides whether a request came over https). Default false. */
  trustProxy?: boolean | number | string;
  /** Milliseconds since the epoch, for the timestamps. */
  clock?: () => number;
}

function fieldErrors(issues: z.core.$ZodIssue[]): FieldError[] {
  return issues.map((issue) => ({ field: issue.path.map(String).join('.') || '(body)', code: issue.code, message: issue.message }));
}

/** The demo repository's express app (it never listens: src/demo/main.ts or a test does). */
export function createDemoRepository({ verifier, trustProxy = false, clock = Date.now }: DemoRepositoryOptions): Express {
  const deposits = new Map<string, Deposit>();
  const records = new Map<string, PublishedRecord>();
  let lastId = 0;
  const now = () => new Date(clock()).toISOString();
  const caller = (req: Request): TesseraPrincipal => req.tessera!;
  const ownDeposit = (req: Request, res: Response): Deposit | undefined => {
    const deposit = deposits.get(String(req.params.id));
    if (deposit && deposit.owner.sub === caller(req).sub) return deposit;
    sendError(res, 404, `No deposit ${req.params.id}.`);
    return undefined;
  };
  const parse = (res: Response, body: unknown) => {
    const result = depositInput.safeParse(body ?? {});
    if (!result.success) sendError(res, 400, 'Validation error.', { errors: fieldErrors(result.error.issues) });
    return result.success ? result.data : undefined;
  };
  /** A body, if any, must be JSON (as in Tessera's own API). */
  const jsonOnly: RequestHandler = (req, res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is('application/json')) return sendError(res, 415, 'This endpoint accepts only application/json.');
    next();
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxy);
  app.use(express.json({ limit: '100kb' }));

  app.get('/api/records', verifier.requireScopes('read'), (_req, res) => {
    res.json({ records: [...records.values()] });
  });
  app.get('/api/records/:id', verifier.requireScopes('read'), (req, res) => {
    const record = records.get(String(req.params.id));
    if (!record) return sendError(res, 404, `No record ${req.params.id}.`);
    res.json(record);
  });

  app.get('/api/deposits', verifier.requireScopes('read'), (req, res) => {
    res.json({ deposits: [...deposits.values()].filter((deposit) => deposit.owner.sub === caller(req).sub) });
  });
  app.get('/api/deposits/:id', verifier.requireScopes('read'), (req, res) => {
    const deposit = ownDeposit(req, res);
    if (deposit) res.json(deposit);
  });
  app.post('/api/deposits', verifier.requireScopes('deposit:write'), jsonOnly, (req, res) => {
    const input = parse(res, req.body);
    if (!input) return;
    const { sub, username } = caller(req);
    const deposit: Deposit = { id: String(++lastId), ...input, owner: { sub, username }, created: now(), updated: now() };
    deposits.set(deposit.id, deposit);
    res.status(201).location(`/api/deposits/${deposit.id}`).json(deposit);
  });
  app.put('/api/deposits/:id', verifier.requireScopes('deposit:write'), jsonOnly, (req, res) => {
    const deposit = ownDeposit(req, res);
    const input = deposit && parse(res, req.body);
    if (!deposit || !input) return;
    Object.assign(deposit, input, { updated: now() });
    res.json(deposit);
  });
  app.post('/api/deposits/:id/actions/publish', verifier.requireScopes('deposit:actions'), (req, res) => {
    const deposit = ownDeposit(req, res);
    if (!deposit) return;
    deposits.delete(deposit.id);
    const { updated: _updated, ...metadata } = deposit;
    const record: PublishedRecord = { ...metadata, published: now() };
    records.set(record.id, record);
    res.status(201).location(`/api/records/${record.id}`).json(record);
  });

  app.use((req, res) => sendError(res, 404, `No route for ${req.method} ${req.path}.`));
  const errors: ErrorRequestHandler = (error: { type?: string; limit?: number }, _req, res, _next) => {
    if (res.headersSent) return res.destroy();
    if (error.type === 'entity.parse.failed') return sendError(res, 400, 'Request body is not valid JSON.');
    if (error.type === 'entity.too.large') return sendError(res, 413, `Request body too large (limit ${error.limit} bytes).`);
    console.error('demo repository: unhandled error', error);
    sendError(res, 500, 'Internal server error.');
  };
  app.use(errors);
  return app;
}
