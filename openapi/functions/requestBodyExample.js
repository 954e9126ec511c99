// ttp:request-body-example: a request body media type must carry an example: `example` or
// `examples` on the media type, or `example`/`examples` on its (resolved) schema.
// oas3-valid-media-example and oas3-valid-schema-example check that the examples are valid.
function hasExamples(node) {
  if (node === null || typeof node !== 'object') return false;
  if (node.example !== undefined) return true;
  if (Array.isArray(node.examples)) return node.examples.length > 0;
  return node.examples !== null && typeof node.examples === 'object' && Object.keys(node.examples).length > 0;
}

export default function requestBodyExample(mediaType, _options, context) {
  if (mediaType === null || typeof mediaType !== 'object') return [];
  if (hasExamples(mediaType) || hasExamples(mediaType.schema)) return [];
  return [{ message: 'The request body has no example.', path: [...context.path] }];
}
