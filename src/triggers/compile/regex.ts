import RE2 from "re2";
import { GuardFailure } from "../guard/guard.js";

/**
 * Regular expressions in triggers run on RE2, which matches in time linear in the input: no pattern
 * can backtrack, whatever a client sends through it. RE2 has no lookaround and no backreferences;
 * such patterns are refused when the stack is saved ({@link regexProblem}).
 *
 * Linear is not yet cheap: when a pattern's DFA grows too large (`/a.{50}c/`), or to fill in
 * capture groups, RE2 runs an NFA at a cost of about (text length × pattern size): `/a.{50}c/` on a
 * million characters took over a second, in one call that cannot be interrupted. So each match
 * is refused (`regex`) when the text left to search, times the pattern's estimated size, is over
 * {@link MAX_REGEX_WORK}.
 */

/** Characters left to search × estimated pattern size allowed for one match: tens of milliseconds at most. */
export const MAX_REGEX_WORK = 2_000_000;

/** A pattern compiled for RE2, with its estimated size. */
interface CompiledPattern {
  readonly re: RE2;
  readonly weight: number;
}

/** Compiled patterns by source and flags; a stack's literals compile once, not on every evaluation. */
const compiled = new Map<string, CompiledPattern>();
const MAX_CACHED_PATTERNS = 10_000;

function compile(pattern: RegExp): CompiledPattern {
  const key = `${pattern.flags}/${pattern.source}`;
  let found = compiled.get(key);
  if (!found) {
    found = { re: new RE2(pattern), weight: weigh(pattern.source) };
    if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear();
    compiled.set(key, found);
  }
  return found;
}

/** The weight of an atom that matches a class of characters (several UTF-8 byte ranges once compiled). */
const CLASS_WEIGHT = 4;

/**
 * An estimate of the size of a pattern's compiled program, from its source (one RE2 accepts):
 * atoms and operators count one each, classes {@link CLASS_WEIGHT}, groups the sum of their
 * contents, and `{n,m}` multiplies the atom before it by its larger bound.
 */
function weigh(source: string): number {
  /** The weight of each open group's contents so far, and of the last atom in it (for a counted repetition). */
  const levels: { sum: number; last: number }[] = [{ sum: 0, last: 0 }];
  const atom = (weight: number) => {
    const level = levels.at(-1)!;
    level.sum += weight;
    level.last = weight;
  };
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === "\\") {
      atom(/[dDwWsSpP]/.test(source[i + 1] ?? "") ? CLASS_WEIGHT : 1);
      i++;
    } else if (char === "[") {
      let end = i + 1;
      if (source[end] === "^") end++;
      if (source[end] === "]") end++;
      while (end < source.length && source[end] !== "]") end += source[end] === "\\" ? 2 : 1;
      i = end;
      atom(CLASS_WEIGHT);
    } else if (char === "(") {
      levels.push({ sum: 1, last: 0 });
    } else if (char === ")") {
      atom(levels.length > 1 ? levels.pop()!.sum : 1);
    } else if (char === "{" && /^\{\d+(,\d*)?\}/.test(source.slice(i))) {
      const [counted, low, , high] = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i))!;
      const times = Math.max(1, Number(low), high ? Number(high) : counted.includes(",") ? Number(low) + 1 : 0);
      const level = levels.at(-1)!;
      level.sum += level.last * (times - 1);
      level.last *= times;
      i += counted.length - 1;
    } else if (char === "|" || char === "*" || char === "+" || char === "?") {
      levels.at(-1)!.sum += 1;
    } else {
      atom(char === "." ? CLASS_WEIGHT : 1);
    }
  }
  return levels.reduce((sum, level) => sum + level.sum, 0);
}

/**
 * The `RegexEngine` JSONata evaluates regex literals with: what JSONata uses of a RegExp (`exec`
 * and `lastIndex`), backed by a shared compiled RE2. Each instance keeps its own `lastIndex`, so
 * evaluations that interleave cannot disturb one another's matching position.
 */
export class LinearRegex {
  private readonly pattern: CompiledPattern;
  private readonly source: string;
  lastIndex = 0;

  constructor(pattern: RegExp) {
    this.pattern = compile(pattern);
    this.source = String(pattern);
  }

  /** @throws GuardFailure `regex` when searching the rest of `text` could cost too much */
  exec(text: string): RegExpExecArray | null {
    const { re, weight } = this.pattern;
    const work = (text.length - this.lastIndex) * weight;
    if (work > MAX_REGEX_WORK) {
      throw new GuardFailure(
        "regex",
        `${this.source} on ${text.length - this.lastIndex} characters is too much work (the pattern's size, about ${weight}, times the characters is over ${MAX_REGEX_WORK}); shorten the text or the pattern`,
      );
    }
    re.lastIndex = this.lastIndex;
    const match = re.exec(text);
    this.lastIndex = re.lastIndex;
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
