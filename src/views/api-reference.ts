import { html, type SafeHtml } from './html.ts';

// The API reference page (/docs/api): the OpenAPI document rendered on the server into Tessera's
// own page layout, so it needs no script and nothing from elsewhere (the strict page policy holds).

/** What the page reads of an OpenAPI document (http/openapi-document.ts builds it). */
type JsonSchema = Record<string, unknown>;
interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required: boolean; description?: string; schema: JsonSchema }[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: JsonSchema }> }>;
}
export interface ReferenceDocument {
  info: { title: string; version: string; description: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
}

/** Text with `code spans`, as in the declarations' descriptions. */
function prose(text: string | undefined): SafeHtml {
  if (!text) return html``;
  return html`${text.split('`').map((part, index) => (index % 2 === 1 ? html`<code>${part}</code>` : part))}`;
}

const refName = (ref: string) => ref.replace('#/components/schemas/', '');

/** A JSON Schema's type as one short line: `string (date-time) | null`, `array of …`. */
function typeLabel(schema: JsonSchema): SafeHtml {
  if (typeof schema.$ref === 'string') {
    const name = refName(schema.$ref);
    return html`<a href="#schema-${name}">${name}</a>`;
  }
  if ('const' in schema) return html`<code>${JSON.stringify(schema.const)}</code>`;
  if (Array.isArray(schema.enum)) return html`one of ${schema.enum.map((value, i) => html`${i ? ', ' : ''}<code>${JSON.stringify(value)}</code>`)}`;
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives) return html`${alternatives.map((alternative, i) => html`${i ? ' | ' : ''}${typeLabel(alternative)}`)}`;
  const types = [schema.type ?? 'any'].flat().map(String);
  return html`${types.map((type, i) => {
    const sep = i ? ' | ' : '';
    if (type === 'array') return html`${sep}array of ${typeLabel((schema.items as JsonSchema | undefined) ?? {})}`;
    if (type === 'string' && typeof schema.format === 'string') return html`${sep}string (${schema.format})`;
    return html`${sep}${type}`;
  })}`;
}

/** An object's fields as a nested list (its sub-objects' fields under each); anything else its type. */
function schemaBlock(schema: JsonSchema): SafeHtml {
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives?.some((a) => a.properties)) {
    return html`<p class="muted">One of:</p><ol class="alternatives">${alternatives.map((a) => html`<li>${schemaBlock(a)}</li>`)}</ol>`;
  }
  const properties = schema.properties as Record<string, JsonSchema> | undefined;
  if (!properties) {
    const items = schema.items as JsonSchema | undefined;
    if (schema.type === 'array' && items?.properties) return html`<p class="muted">An array of:</p>${schemaBlock(items)}`;
    return html`<p><span class="type">${typeLabel(schema)}</span>${schema.description ? html` — ${prose(String(schema.description))}` : ''}</p>`;
  }
  const required = (schema.required as string[] | undefined) ?? [];
  return html`<ul class="fields">${Object.entries(properties).map(([name, field]) => {
    const items = field.items as JsonSchema | undefined;
    const nested = field.properties ? schemaBlock(field) : items?.properties ? schemaBlock(items) : html``;
    return html`<li><code class="field">${name}</code> <span class="type">${typeLabel(field)}</span>${required.includes(name) ? html` <span class="badge">required</span>` : ''}${field.description ? html` — ${prose(String(field.description))}` : ''}${nested}</li>`;
  })}</ul>`;
}

/** What an operation's security requirements say, in words: any one of the lines. */
function credentialsBlock(operation: OperationObject): SafeHtml {
  if (!operation.security?.length) return html`<p class="muted">No credential.</p>`;
  return html`<p class="muted">Any one of:</p><ul class="credentials">${operation.security.map((requirement) => html`<li>${Object.keys(requirement).map((name, i) => html`${i ? ' + ' : ''}<a href="#security-${name}">${name}</a>`)}</li>`)}</ul>`;
}

function operationBlock(path: string, method: string, operation: OperationObject): SafeHtml {
  const body = operation.requestBody;
  return html`<section class="operation" id="${operation.operationId}">
<h3><span class="method method-${method}">${method.toUpperCase()}</span> <code>${path}</code></h3>
<p>${prose(operation.summary)}</p>
${operation.description ? html`<p class="muted">${prose(operation.description)}</p>` : ''}
<h4>Credentials</h4>${credentialsBlock(operation)}
${operation.parameters?.length
    ? html`<h4>Parameters</h4><ul class="fields">${operation.parameters.map((p) => html`<li><code class="field">${p.name}</code> <span class="muted">in ${p.in}</span> <span class="type">${typeLabel(p.schema)}</span>${p.required ? html` <span class="badge">required</span>` : ''}${p.description ? html` — ${prose(p.description)}` : ''}</li>`)}</ul>`
    : ''}
${body
    ? html`<h4>Request body</h4><p class="muted">${Object.keys(body.content).map((type, i) => html`${i ? ', ' : ''}<code>${type}</code>`)}${body.required ? '' : ' (optional)'}</p>${schemaBlock(Object.values(body.content)[0]!.schema)}`
    : ''}
<h4>Responses</h4>
<dl class="responses">${Object.entries(operation.responses).map(([status, answer]) => {
    const content = answer.content ? Object.entries(answer.content)[0] : undefined;
    return html`<dt><span class="status status-${status[0]}xx">${status}</span> ${prose(answer.description)}</dt><dd>${answer.headers ? html`<p class="muted">Headers: ${Object.keys(answer.headers).map((name, i) => html`${i ? ', ' : ''}<code>${name}</code>`)}</p>` : ''}${content ? (content[0] !== 'application/json' ? html`<p class="muted"><code>${content[0]}</code></p>` : content[1].schema.$ref ? html`<p class="muted">Body: ${typeLabel(content[1].schema)}</p>` : schemaBlock(content[1].schema)) : ''}</dd>`;
  })}</dl>
</section>`;
}

/** The body of the reference page: contents by tag, every operation, then the schemes and shared schemas. */
export function apiReferenceBody(document: ReferenceDocument): SafeHtml {
  const byTag = document.tags.map(({ name }) => ({
    name,
    operations: Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).filter(([, op]) => op.tags.includes(name)).map(([method, op]) => ({ path, method, op }))),
  }));
  return html`<h1>${document.info.title} API reference <span class="badge">${document.info.version}</span></h1>
<p>${prose(document.info.description)}</p>
<p>The same as an OpenAPI 3.1 document: <a href="/openapi.json">/openapi.json</a> (to generate a client from).</p>
<nav aria-label="Operations"><ul class="contents">${byTag.map((tag) => html`<li>${tag.name}<ul>${tag.operations.map(({ path, method, op }) => html`<li><a href="#${op.operationId}"><span class="method method-${method}">${method.toUpperCase()}</span> <code>${path}</code></a></li>`)}</ul></li>`)}
<li><a href="#security">Credentials</a></li><li><a href="#schemas">Shared schemas</a></li></ul></nav>
${byTag.map((tag) => html`<h2>${tag.name}</h2>${tag.operations.map(({ path, method, op }) => operationBlock(path, method, op))}`)}
<h2 id="security">Credentials</h2>
<dl class="schemes">${Object.entries(document.components.securitySchemes).map(([name, scheme]) => html`<dt id="security-${name}"><code>${name}</code></dt><dd>${scheme.type === 'http' ? html`<code>Authorization: Bearer</code>` : scheme.type === 'apiKey' ? html`${String(scheme.in)} <code>${String(scheme.name)}</code>` : html`OpenID Connect: <code>${String(scheme.openIdConnectUrl)}</code>`} — ${prose(String(scheme.description ?? ''))}</dd>`)}</dl>
<h2 id="schemas">Shared schemas</h2>
${Object.entries(document.components.schemas).map(([name, schema]) => html`<section class="operation" id="schema-${name}"><h3><code>${name}</code></h3>${schema.description ? html`<p>${prose(String(schema.description))}</p>` : ''}${schemaBlock(schema)}</section>`)}`;
}
