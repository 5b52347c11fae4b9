/**
 * The `search` parameter of `GET /v1/utility/credentials`: the subset of RSQL that Utility Cloud clients use.
 *
 *   search     = or
 *   or         = and { "," and }          "," (or) binds looser than ";" (and), as in RSQL
 *   and        = comparison { ";" comparison }
 *   comparison = field ( "==" | "!=" ) value
 *   field      = correlationId | providerName | status | username
 *   value      = unquoted | '"' … '"' | "'" … "'"    ("\" escapes inside quotes; "*" matches any run of characters)
 *
 * Whitespace between tokens is ignored. Anything else (parentheses, `=in=`, `=gt=`, other fields) is refused
 * with a message that says where and why, so a client learns the subset instead of getting an empty list.
 * Matching is case-sensitive; `!=` is exactly the negation of `==` (so a missing correlationId is `!=` anything).
 */
import { errors } from '../errors.ts';
import { V1_STATUSES } from './status-mapping.ts';

export const SEARCH_FIELDS = ['correlationId', 'providerName', 'status', 'username'] as const;
export type SearchField = (typeof SEARCH_FIELDS)[number];
export type Searchable = Record<SearchField, string | null>;
export type SearchPredicate = (item: Searchable) => boolean;

/** Characters that end an unquoted value (RSQL reserves them) besides whitespace. */
const RESERVED = new Set(['"', "'", '(', ')', ';', ',', '=', '!', '~', '<', '>']);

class Parser {
  private position = 0;

  constructor(private readonly text: string) {}

  parse(): SearchPredicate {
    const predicate = this.or();
    this.skipWhitespace();
    if (!this.isAtEnd()) this.fail(this.peek() === '(' || this.peek() === ')' ? 'parentheses are not supported' : `unexpected "${this.peek()}"`);
    return predicate;
  }

  private or(): SearchPredicate {
    const alternatives = [this.and()];
    while (this.consume(',')) alternatives.push(this.and());
    return alternatives.length === 1 ? (alternatives[0] as SearchPredicate) : (item) => alternatives.some((matches) => matches(item));
  }

  private and(): SearchPredicate {
    const conditions = [this.comparison()];
    while (this.consume(';')) conditions.push(this.comparison());
    return conditions.length === 1 ? (conditions[0] as SearchPredicate) : (item) => conditions.every((matches) => matches(item));
  }

  private comparison(): SearchPredicate {
    this.skipWhitespace();
    const field = this.field();
    this.skipWhitespace();
    const isNegated = this.operator(field);
    this.skipWhitespace();
    const valueStart = this.position;
    const value = this.value(field);
    if (field === 'status') this.checkStatus(value, valueStart);
    const matchesValue = globMatcher(value);
    const matches = (item: Searchable) => {
      const actual = item[field];
      return actual !== null && matchesValue(actual);
    };
    return isNegated ? (item) => !matches(item) : matches;
  }

  private field(): SearchField {
    const start = this.position;
    while (!this.isAtEnd() && /[A-Za-z0-9_.]/.test(this.peek())) this.position += 1;
    const name = this.text.slice(start, this.position);
    if (name === '') this.fail(this.peek() === '(' ? 'parentheses are not supported' : 'expected a field name', start);
    if (!(SEARCH_FIELDS as readonly string[]).includes(name)) {
      this.fail(`"${name}" cannot be searched; use one of ${SEARCH_FIELDS.join(', ')}`, start);
    }
    return name as SearchField;
  }

  /** True for `!=`. */
  private operator(field: SearchField): boolean {
    if (this.text.startsWith('==', this.position)) {
      this.position += 2;
      return false;
    }
    if (this.text.startsWith('!=', this.position)) {
      this.position += 2;
      return true;
    }
    const other = /^(=[a-z]*=|[<>]=?|=~|~=?)/i.exec(this.text.slice(this.position))?.[0];
    this.fail(other ? `operator "${other}" is not supported; use == or !=` : `expected == or != after ${field}`);
  }

  private value(field: SearchField): string {
    const quote = this.peek();
    if (quote === '"' || quote === "'") return this.quoted(quote);
    const start = this.position;
    while (!this.isAtEnd() && !RESERVED.has(this.peek()) && !/\s/.test(this.peek())) this.position += 1;
    if (this.position === start) this.fail(`expected a value for ${field} (quote values that contain spaces or ; , ( ) = ! ~ < >)`);
    return this.text.slice(start, this.position);
  }

  private quoted(quote: string): string {
    const start = this.position;
    this.position += 1;
    let value = '';
    while (!this.isAtEnd() && this.peek() !== quote) {
      if (this.peek() === '\\') this.position += 1;
      if (this.isAtEnd()) break;
      value += this.peek();
      this.position += 1;
    }
    if (this.isAtEnd()) this.fail(`the value opened with ${quote} is never closed`, start);
    this.position += 1;
    return value;
  }

  /** A v1 status is one of four words: a typo (or a current-API status) would otherwise silently match nothing. */
  private checkStatus(value: string, at: number) {
    if (!value.includes('*') && !(V1_STATUSES as readonly string[]).includes(value)) {
      this.fail(`status is one of ${V1_STATUSES.join(', ')} (got "${value}")`, at);
    }
  }

  private consume(token: string): boolean {
    this.skipWhitespace();
    if (this.peek() !== token) return false;
    this.position += 1;
    return true;
  }

  private skipWhitespace() {
    while (!this.isAtEnd() && /\s/.test(this.peek())) this.position += 1;
  }

  private peek(): string {
    return this.text[this.position] ?? '';
  }

  private isAtEnd(): boolean {
    return this.position >= this.text.length;
  }

  private fail(reason: string, at = this.position): never {
    throw errors.invalidParameter({
      param: 'search',
      message: `search is not valid at character ${at + 1}: ${reason}`,
      value: this.text,
    });
  }
}

/**
 * Whether `text` matches `pattern`, where `*` stands for any run of characters. The literal pieces between
 * the stars are found in order with `indexOf` (the first piece a prefix, the last a suffix): a leftmost match of
 * each piece is never worse for the rest, so nothing backtracks. Character-by-character backtracking to the
 * last star cost pattern × text per field, which a 2,000-character search over a large organization turned
 * into seconds of the API's one thread.
 */
export function globMatcher(pattern: string): (text: string) => boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return (text) => text === pattern;
  const first = pieces[0] ?? '';
  const last = pieces[pieces.length - 1] ?? '';
  const middle = pieces.slice(1, -1).filter((piece) => piece !== '');
  return (text) => {
    if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
    const end = text.length - last.length;
    let from = first.length;
    for (const piece of middle) {
      const at = text.indexOf(piece, from);
      if (at === -1 || at + piece.length > end) return false;
      from = at + piece.length;
    }
    return true;
  };
}

/** Compiles a search string into a predicate; throws the catalog's invalidParameter (400) when outside the subset. */
export function compileSearch(search: string): SearchPredicate {
  if (search.trim() === '') throw errors.invalidParameter({ param: 'search', message: 'search is empty; leave it out to list everything', value: search });
  return new Parser(search).parse();
}
