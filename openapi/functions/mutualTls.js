// ttp:mutual-tls: the document defines a security scheme of type mutualTLS, and every
// operation requires it (through its own `security` or the document's), with no alternative
// that would let a caller in without a client certificate.
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

export default function mutualTls(doc) {
  if (doc === null || typeof doc !== 'object') return [];
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  const mtls = new Set(Object.keys(schemes).filter((name) => schemes[name] && schemes[name].type === 'mutualTLS'));
  const results = [];
  if (mtls.size === 0) {
    results.push({ message: 'No security scheme of type mutualTLS is defined.', path: ['components', 'securitySchemes'] });
    return results;
  }
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item && item[method];
      if (!op) continue;
      const requirements = op.security !== undefined ? op.security : doc.security;
      const ok =
        Array.isArray(requirements) &&
        requirements.length > 0 &&
        requirements.every((req) => req && Object.keys(req).some((name) => mtls.has(name)));
      if (!ok) {
        results.push({
          message: `${method.toUpperCase()} ${path} must require the mutualTLS security scheme.`,
          path: ['paths', path, method],
        });
      }
    }
  }
  return results;
}
