import t from 'tap';
import { normalizeCode } from '../../src/domain/one-time-code.ts';

t.test('whitespace goes, ASCII stays as typed', async (t) => {
  t.equal(normalizeCode(' 123 456\n'), '123456');
  t.equal(normalizeCode('Ab-9x'), 'Ab-9x', 'letters and punctuation go to the provider as typed');
  t.equal(normalizeCode(' \t '), '');
});

t.test('digits of any script become ASCII digits', async (t) => {
  t.equal(normalizeCode('١٢٣٤٥٦'), '123456', 'Arabic-Indic');
  t.equal(normalizeCode('۰۹۸۷۶۵'), '098765', 'Extended Arabic-Indic (Persian)');
  t.equal(normalizeCode('०१२३४५'), '012345', 'Devanagari');
  t.equal(normalizeCode('１２３ ４５６'), '123456', 'full-width, folded by NFKC');
  t.equal(normalizeCode('𝟏𝟐𝟑𝟗𝟎𝟕'), '123907', 'mathematical bold (NFKC folds them first)');
  t.equal(normalizeCode('\u{116DB}\u{116E3}'), '19', 'Myanmar Extended-C: two adjacent runs of ten that NFKC leaves alone');
  t.equal(normalizeCode('𞥐𞥙'), '09', 'Adlam, outside the Basic Multilingual Plane');
});

t.test('a character no provider code holds is refused', async (t) => {
  t.equal(normalizeCode('12345é'), null);
  t.equal(normalizeCode('123\u0000456'), null, 'a control character');
  t.equal(normalizeCode('一二三'), null, 'CJK numerals are not decimal digits');
});
