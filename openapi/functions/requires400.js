// nlgov:problem-invalid-input: every POST, PUT and PATCH, and every GET and DELETE that has
// parameters (on the operation or on its path), must document a 400 response.
// Applied to each path item; reports the responses object of every operation that lacks it.
const ALWAYS = ['post', 'put', 'patch'];
const WITH_PARAMETERS = ['get', 'delete'];

export default function requires400(pathItem, _options, context) {
  if (pathItem === null || typeof pathItem !== 'object') return [];
  const results = [];
  const shared = Array.isArray(pathItem.parameters) ? pathItem.parameters : [];
  for (const method of [...ALWAYS, ...WITH_PARAMETERS]) {
    const operation = pathItem[method];
    if (operation === null || typeof operation !== 'object') continue;
    const own = Array.isArray(operation.parameters) ? operation.parameters : [];
    const needed = ALWAYS.includes(method) || shared.length + own.length > 0;
    const responses = operation.responses || {};
    if (needed && !Object.prototype.hasOwnProperty.call(responses, '400')) {
      results.push({
        message: `${method.toUpperCase()} ${context.path[context.path.length - 1]} must be able to answer 400 (invalid input).`,
        path: [...context.path, method, 'responses'],
      });
    }
  }
  return results;
}
