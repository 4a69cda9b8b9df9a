/**
 * Time slices: how trigger runs share the event loop with everything else.
 *
 * Trigger work (JSONata evaluation, the guard's bounded built-ins, the engine's conversions of large
 * values) asks {@link sliceIsOver} between small steps of work and, when it is, waits for
 * {@link nextSlice}. A slice is one stretch of the event loop: it starts at the first check after
 * the event loop last ran, and it is shared by all runs under way, so twenty runs at once hold the
 * event loop for one slice between two polls for I/O, not for twenty.
 *
 * Runs waiting for a slice take turns, oldest first: in each turn of the event loop one goes on
 * until the slice is over (then it waits again, behind the others), and the next one only once the
 * first has stopped (waiting for I/O, or done) with time left in the slice. Resuming them all at
 * once would let each do a step before seeing that the slice is over: twenty steps per turn.
 */

/** How long trigger work may hold the event loop before it lets timers and I/O go ahead. */
export const TIME_SLICE_MS = 5;

/** When the current slice started; undefined once the event loop has run since. */
let sliceStarted: number | undefined;
/** Runs waiting for a slice, oldest first. */
const waiting: (() => void)[] = [];
/** Whether a turn for the waiting runs is scheduled. */
let turnScheduled = false;

function endSlice(): void {
  sliceStarted = undefined;
}

/**
 * True when trigger work has held the event loop for {@link TIME_SLICE_MS} since it last ran.
 * The first check after the event loop ran starts a new slice.
 */
export function sliceIsOver(): boolean {
  const now = performance.now();
  if (sliceStarted === undefined) {
    sliceStarted = now;
    // Runs once the event loop gets to its check phase, which it does only once the work that started the slice has stopped.
    setImmediate(endSlice);
    return false;
  }
  return now - sliceStarted >= TIME_SLICE_MS;
}

/** Resolves when it is this run's turn to go on, in a later turn of the event loop (see the module comment). */
export function nextSlice(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    scheduleTurn();
  });
}

/**
 * Schedules the waiting runs' turn after the event loop has polled for I/O and run due timers (two
 * hops: a yield made while I/O callbacks run would otherwise resume in the same turn's check phase).
 */
function scheduleTurn(): void {
  if (turnScheduled) return;
  turnScheduled = true;
  setImmediate(() => setImmediate(startTurn));
}

function startTurn(): void {
  turnScheduled = false;
  sliceStarted = undefined;
  resumeNext();
}

/** Resumes the oldest waiting run; once its work has stopped, the next one if the slice has time left. */
function resumeNext(): void {
  const next = waiting.shift();
  if (!next) return;
  next();
  // A tick queued by a promise job runs once all promise jobs are done: the resumed run has stopped
  // by then. (Queued from here, it would run first: ticks go before promise jobs.)
  queueMicrotask(() => process.nextTick(afterResumed));
}

function afterResumed(): void {
  if (waiting.length === 0) return;
  if (sliceStarted !== undefined && performance.now() - sliceStarted >= TIME_SLICE_MS) scheduleTurn();
  else resumeNext();
}

/**
 * A promise that never settles: the work of a run that is over (its result is out already) waits on
 * it and is collected with it, where thousands of rejections would each cost the event loop time.
 */
export function parked(): Promise<never> {
  return new Promise<never>(() => {});
}

/** Waits for the next slice; work of a run that is over by then is {@link parked}. */
export async function nextSliceFor(isOver: (() => boolean) | undefined): Promise<void> {
  await nextSlice();
  if (isOver?.()) await parked();
}

/** How many items of a large value are worked through between two looks at the clock. */
export const ITEMS_PER_CHECK = 1024;
