import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

// Holds Tessera's answers to what /openapi.json says of them, with an independent JSON Schema
// validator (ajv, draft 2020-12): `documentedFetch(url)` is a fetch for the integration tests of
// the JSON API. Every answer to a documented operation must have a status the operation lists,
// and a JSON body that its schema for that status accepts; anything else fails the test.
// Requests to paths the document does not describe (the OAuth endpoints, the pages) pass unchecked.

interface OperationLike {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}
interface DocumentLike {
  paths: Record<string, Record<string, OperationLike>>;
  components: { schemas: Record<string, unknown> };
}

/** What was checked: operation and status, as `GET /api/v1/tokens 200`. */
export type CheckedAnswers = Set<string>;

export class UndocumentedAnswerError extends Error {}

/** A checker of answers against one document. */
export function answerChecker(document: DocumentLike) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv2020) => void)(ajv);
  // The document's components under one id: their references to each other resolve within it.
  ajv.addSchema({ $id: 'tessera:openapi', components: { schemas: document.components.schemas } });
  const templates = Object.keys(document.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const compiled = new Map<string, ValidateFunction>();
  const checked: CheckedAnswers = new Set();

  /** The operation a request goes to, if the document describes it. */
  function operationFor(method: string, path: string): { template: string; operation: OperationLike } | undefined {
    const match = templates.find(({ pattern }) => pattern.test(path));
    const operation = match ? document.paths[match.template]![method.toLowerCase()] : undefined;
    return match && operation ? { template: match.template, operation } : undefined;
  }

  /** Throws UndocumentedAnswerError when the answer is not what the document says. */
  function check(method: string, path: string, status: number, contentType: string | null, text: string): void {
    const found = operationFor(method, path);
    if (!found) return;
    const name = `${method.toUpperCase()} ${found.template}`;
    const declared = found.operation.responses[String(status)];
    if (!declared) throw new UndocumentedAnswerError(`${name} answered ${status}, which the document does not list (${Object.keys(found.operation.responses).join(', ')}): ${text.slice(0, 300)}`);
    checked.add(`${name} ${status}`);
    const json = declared.content?.['application/json'];
    if (!json) {
      if (declared.content && !Object.keys(declared.content).some((type) => contentType?.startsWith(type))) throw new UndocumentedAnswerError(`${name} ${status}: content type ${contentType}`);
      if (!declared.content && text !== '' && method.toUpperCase() !== 'HEAD') throw new UndocumentedAnswerError(`${name} ${status} has a body the document does not describe: ${text.slice(0, 300)}`);
      return;
    }
    if (!contentType?.startsWith('application/json')) throw new UndocumentedAnswerError(`${name} ${status}: expected JSON, got ${contentType}`);
    const key = `${name} ${status}`;
    let validate = compiled.get(key);
    if (!validate) {
      // An operation's references to components point into the document registered above.
      const schema = JSON.parse(JSON.stringify(json.schema).replaceAll('"#/components/', '"tessera:openapi#/components/')) as object;
      validate = ajv.compile(schema);
      compiled.set(key, validate);
    }
    const body: unknown = JSON.parse(text);
    if (!validate(body)) throw new UndocumentedAnswerError(`${name} ${status}: the body does not match the document: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 500)}`);
  }

  return { check, checked, operationFor };
}

/**
 * A fetch that checks every answer from `baseUrl` against the document it serves at /openapi.json
 * (read once, at the first request). The answer is handed back unread.
 */
export function documentedFetch(baseUrl: () => string): typeof fetch & { checked: CheckedAnswers } {
  let checker: ReturnType<typeof answerChecker> | undefined;
  const checked: CheckedAnswers = new Set();
  const wrapped = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    checker ??= answerChecker((await (await fetch(`${baseUrl()}/openapi.json`)).json()) as DocumentLike);
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    // A followed redirect's answer is another operation's (or a page's): not this one's to check.
    if (url.origin === new URL(baseUrl()).origin && !response.redirected) {
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      checker.check(method, url.pathname, response.status, response.headers.get('content-type'), await response.clone().text());
      for (const entry of checker.checked) checked.add(entry);
    }
    return response;
  };
  return Object.assign(wrapped, { checked }) as typeof fetch & { checked: CheckedAnswers };
}
