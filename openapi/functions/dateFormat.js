// nlgov:specify-format-for-date: applied to every `properties` object of a schema.
// 1. A property whose name says it is a date (ends in Date, Datum or On, or is date/datum)
//    must be a string with format: date (in an anyOf/oneOf/allOf branch is fine, as pydantic
//    writes optional fields), and must not be a date-time.
// 2. A string constrained by a pattern that only admits a calendar date (yyyy-mm-dd) must use
//    format: date instead, so that clients and validators know it is a date.
const DATE_NAME = /^(date|datum)$|[a-z0-9](Date|Datum|On)$/;
const DATE_PATTERN = /^\^?\\d\{4\}-\\d\{2\}-\\d\{2\}\$?$|^\^?\[0-9\]\{4\}-\[0-9\]\{2\}-\[0-9\]\{2\}\$?$/;

function formats(schema) {
  if (schema === null || typeof schema !== 'object') return [];
  const found = typeof schema.format === 'string' ? [schema.format] : [];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(schema[key])) {
      for (const branch of schema[key]) found.push(...formats(branch));
    }
  }
  if (schema.type === 'array' && schema.items) found.push(...formats(schema.items));
  return found;
}

export default function dateFormat(properties, _options, context) {
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) return [];
  const results = [];
  for (const [name, schema] of Object.entries(properties)) {
    if (schema === null || typeof schema !== 'object') continue;
    const path = [...context.path, name];
    const found = formats(schema);
    if (DATE_NAME.test(name)) {
      if (!found.includes('date')) {
        results.push({ message: `Date field ${name} must have format: date.`, path });
      } else if (found.includes('date-time')) {
        results.push({ message: `Date field ${name} must be format: date, not date-time.`, path });
      }
    }
    if (typeof schema.pattern === 'string' && DATE_PATTERN.test(schema.pattern) && schema.format !== 'date') {
      results.push({ message: `Field ${name} holds a date: use format: date instead of a pattern.`, path });
    }
  }
  return results;
}
