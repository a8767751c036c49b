// Proactive content negotiation on the Accept header (RFC 9110 §12.5.1), for the few endpoints
// that can answer in more than one media type.

/** A weight: 0 to 1 with at most three decimals (RFC 9110 §12.4.2). */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The weight `accept` gives `mediaType` (lower case, `type/subtype`): that of the most specific
 * range matching it (the type itself, then its type with any subtype, then any type), 0 when none does. A range whose
 * weight is malformed is ignored. Media type parameters other than `q` are not compared.
 */
export function acceptWeight(accept: string, mediaType: string): number {
  const slash = mediaType.indexOf('/');
  const typeRange = `${mediaType.slice(0, slash)}/*`;
  let bestSpecificity = 0;
  let weight = 0;
  for (const element of accept.split(',')) {
    const [rangePart = '', ...parameters] = element.split(';');
    const range = rangePart.trim().toLowerCase();
    const specificity = range === mediaType ? 3 : range === typeRange ? 2 : range === '*/*' ? 1 : 0;
    if (specificity === 0 || specificity <= bestSpecificity) continue;
    let q = 1;
    let malformed = false;
    for (const parameter of parameters) {
      const [name = '', value = ''] = parameter.split('=', 2).map((part) => part.trim());
      if (name.toLowerCase() !== 'q') continue;
      if (QVALUE.test(value)) q = Number(value);
      else malformed = true;
    }
    if (malformed) continue;
    bestSpecificity = specificity;
    weight = q;
  }
  return weight;
}
