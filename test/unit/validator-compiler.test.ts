import t from 'tap';
import { buildValidatorCompiler } from '../../src/schemas/validator-compiler.ts';

type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message: string }[] | null };

function compile(httpPart: 'body' | 'querystring', schema: object): Validate {
  const compiler = buildValidatorCompiler()({}, {});
  return compiler({ schema, method: 'POST', url: '/test', httpPart } as never) as unknown as Validate;
}

t.test('what Ajv lets through is refused, and where is named', async (t) => {
  const body = compile('body', { type: 'object', additionalProperties: true });
  t.equal(body({ a: { b: ['fine', 'also \ud83d\ude00 fine'] } }), true, 'paired surrogates (an emoji) are text');
  t.equal(body({ a: { b: ['fine', 'x\ud800'] } }), false);
  t.match(body.errors, [{ instancePath: '/a/b/1', message: /Unicode text/ }], 'a lone surrogate deep inside');
  t.equal(body({ a: { '\udc00': 1 } }), false);
  t.match(body.errors, [{ instancePath: '/a/\udc00', message: /field name/ }], 'in a field name');
  t.equal(body({ n: Number.POSITIVE_INFINITY }), false);
  t.match(body.errors, [{ instancePath: '/n', message: 'must be a finite number' }]);

  const query = compile('querystring', { type: 'object', properties: { size: { type: 'integer', maximum: 100 } } });
  const infinite = { size: '1e309' };
  t.equal(query(infinite), false, 'Infinity, coerced, would pass maximum: 100 in Ajv alone');
  t.match(query.errors, [{ instancePath: '/size', message: 'must be a finite number' }]);
  for (const text of ['Infinity', ' ', '', '0x10', '0b1', '1_000', '+5', '5 ']) {
    t.equal(query({ size: text }), false, `${JSON.stringify(text)}: Ajv alone reads it as Number() does`);
    t.match(query.errors, [{ instancePath: '/size', message: 'must be a number in decimal digits' }]);
  }
  t.equal(query({ size: ['7', '0x10'] }), false, 'every text of a repeated parameter');
  const large = { size: '1e3' };
  t.equal(query(large), false);
  t.match(query.errors, [{ instancePath: '/size', message: 'must be <= 100' }], "Ajv's own errors pass through");
  const fine = { size: '50' };
  t.equal(query(fine), true);
  t.same(fine, { size: 50 }, 'coerced as before');
  t.equal(query.errors, null);
  const negative = { size: '-3' };
  t.equal(query(negative), true, 'a sign and digits are decimal');
  t.same(negative, { size: -3 });
  const words = compile('querystring', { type: 'object', properties: { q: { type: 'string' } } });
  t.equal(words({ q: '0x10' }), true, 'text fields are not numbers');
});
