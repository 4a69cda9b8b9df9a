import RE2 from "re2";

/**
 * Regular expressions in triggers run on RE2, which matches in time linear in the input: no pattern
 * can backtrack, whatever a client sends through it. RE2 has no lookaround and no backreferences;
 * such patterns are refused when the stack is saved ({@link regexProblem}).
 */

/** Compiled patterns by source and flags; a stack's literals compile once, not on every evaluation. */
const compiled = new Map<string, RE2>();
const MAX_CACHED_PATTERNS = 10_000;

function compile(pattern: RegExp): RE2 {
  const key = `${pattern.flags}/${pattern.source}`;
  let re = compiled.get(key);
  if (!re) {
    re = new RE2(pattern);
    if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear();
    compiled.set(key, re);
  }
  return re;
}

/**
 * The `RegexEngine` JSONata evaluates regex literals with: what JSONata uses of a RegExp (`exec`
 * and `lastIndex`), backed by a shared compiled RE2. Each instance keeps its own `lastIndex`, so
 * evaluations that interleave cannot disturb one another's matching position.
 */
export class LinearRegex {
  private readonly re: RE2;
  lastIndex = 0;

  constructor(pattern: RegExp) {
    this.re = compile(pattern);
  }

  exec(text: string): RegExpExecArray | null {
    this.re.lastIndex = this.lastIndex;
    const match = this.re.exec(text);
    this.lastIndex = this.re.lastIndex;
    return match;
  }
}

/** Why RE2 cannot run a pattern (lookaround, backreferences...), or undefined when it can. */
export function regexProblem(pattern: RegExp): string | undefined {
  try {
    compile(pattern);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
